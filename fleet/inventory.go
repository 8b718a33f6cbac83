// Package fleet is the Manager's pure model of its world: the inventory of
// servers and containers, port leases, and the placement decisions made over
// them. Nothing here does I/O or imports Temporal, so every rule is covered by
// table tests and the Manager workflow can call it deterministically.
package fleet

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
)

// ContainerState is where a container is in its life.
type ContainerState string

// Container states, as shown by `msm status`.
const (
	Starting ContainerState = "starting" // process asked for, agent not yet registered or service not yet loaded
	Waiting  ContainerState = "waiting"  // registered, no service: part of the warm pool
	Loaded   ContainerState = "loaded"   // a service is assigned; Healthy says whether it answers
	Draining ContainerState = "draining" // being unloaded or destroyed
	Failed   ContainerState = "failed"   // start or load failed; Error says why
)

// ServerState is where a server is in its life.
type ServerState string

// Server states.
const (
	ServerLaunching ServerState = "launching" // asked of the provider
	ServerReady     ServerState = "ready"     // its node agent can take containers
	ServerFailed    ServerState = "failed"    // the provider could not launch it
	ServerDraining  ServerState = "draining"  // being emptied (rearranged): nothing new goes there
	// ServerLost: its node agent went unheard for the liveness window.
	// Nothing new goes there; its containers are failed (replaced on other
	// servers) and keep their leases until it comes back and they are fenced.
	ServerLost ServerState = "lost"
)

// Server is one machine the Manager uses.
type Server struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Slots   int               `json:"slots"`
	Ports   catalog.PortRange `json:"ports"`
	State   ServerState       `json:"state"`
	// Blocked are ports of the range that the node found held by a process
	// msm does not own; they are never leased.
	Blocked []int  `json:"blocked,omitempty"`
	Error   string `json:"error,omitempty"`
	// NodeSeen says its node agent has been heard from (it came up, or
	// started a container): until then it may still be booting.
	NodeSeen bool `json:"node_seen,omitempty"`
	// LostAt is when it was lost (ServerLost), for manager.forget_after.
	LostAt time.Time `json:"lost_at,omitzero"`
	// Node is the msm version of its node agent, as it last said
	// (workflows.ReconcileResult); "" until it does.
	Node string `json:"node,omitempty"`
	// Unheard is set while its lease timed out only because Temporal, or
	// the Manager, was away: until then the Manager waits for its node to
	// lease again before it takes the server for lost.
	Unheard time.Time `json:"unheard,omitzero"`
}

// Container is one `msm agent` process and its port lease.
type Container struct {
	ID     string `json:"id"`
	Server string `json:"server"`
	// Port is the container's lease on its server: no other live container
	// on the same server holds it. The lease lives as long as this record.
	Port    int            `json:"port"`
	State   ContainerState `json:"state"`
	Service string         `json:"service,omitempty"`
	Healthy bool           `json:"healthy"`
	// PID is the agent's process ID once its node reported the start.
	PID        int  `json:"pid,omitempty"`
	Registered bool `json:"registered,omitempty"`
	// Crashed marks a failed instance its agent reported (the MicroService
	// exited or failed its health checks): it is replaced, then destroyed.
	Crashed bool `json:"crashed,omitempty"`
	// Unloading marks a draining instance that returns to the warm pool:
	// it counts as part of the pool already, so that decisions made while
	// it unloads neither refill the pool for it nor unload more into it.
	Unloading bool   `json:"unloading,omitempty"`
	Error     string `json:"error,omitempty"`
	// Revision is the revision of its service it was loaded with
	// (catalog.Service.Revision); "" for a waiting container, and for one
	// loaded before revisions were kept.
	Revision string `json:"revision,omitempty"`
	// ReadyAt is when its service last became healthy (a roll waits
	// update.health_grace after it).
	ReadyAt time.Time `json:"ready_at,omitzero"`
	// Image is the image the container runs on the docker kind when it is
	// not the Manager's (manager.docker.image): that of the service it was
	// started for (catalog.Service.Image), or of the image's own warm pool
	// (manager.warm_pool.images). Such a container serves only services of
	// that image: it waits only in that image's pool, and is destroyed, not
	// unloaded, when that pool is full.
	Image string `json:"image,omitempty"`
	// Agent is the msm version of its container agent: its node's when
	// the node started it (an agent is the node's own msm-agent, or on the
	// docker kind the one of the node's image); "" when not known (started
	// before versions were kept). `msm upgrade agents` replaces those of
	// another version than their node's.
	Agent string `json:"agent,omitempty"`
}

// Inventory is everything the Manager owns. Slices, not maps, so that every
// walk over it is in a fixed order (workflow code must be deterministic).
type Inventory struct {
	Servers    []Server      `json:"servers"`
	Containers ContainerList `json:"containers"`
	// Seq numbers containers; it only grows, so IDs are never reused.
	Seq int `json:"seq"`
	// ServerSeq numbers the servers a launching kind (ec2, azure) creates,
	// as <manager>-s<n>; it only grows.
	ServerSeq int `json:"server_seq,omitempty"`
	// Failed are the most recent containers that failed and were destroyed:
	// they hold no port and no slot, and are kept only to show what
	// happened. A failed container that could not be destroyed stays in
	// Containers, holding its lease.
	Failed []Container `json:"failed,omitempty"`

	// idx finds servers by ID without a walk. It is derived from Servers
	// (never serialized) and rebuilt when the slice changed under it, so an
	// Inventory decoded after continue-as-new, or written as a literal in a
	// test, indexes itself on first use. Containers need no index: they are
	// kept in the order of their sequence numbers (see Container).
	idx map[string]int
}

// indexed returns the server index, building it when it is missing.
func (inv *Inventory) indexed() map[string]int {
	if inv.idx == nil {
		x := make(map[string]int, len(inv.Servers))
		// The first of a (never expected) repeated ID wins, as a walk
		// would find it.
		for i, s := range inv.Servers {
			if _, ok := x[s.ID]; !ok {
				x[s.ID] = i
			}
		}
		inv.idx = x
	}
	return inv.idx
}

// Clone returns a deep copy that shares nothing with inv: deciding on it
// (a dry run) leaves inv as it was.
func (inv *Inventory) Clone() Inventory {
	out := Inventory{Seq: inv.Seq, ServerSeq: inv.ServerSeq, Containers: slices.Clone(inv.Containers), Failed: slices.Clone(inv.Failed)}
	if inv.Servers != nil {
		out.Servers = make([]Server, 0, len(inv.Servers))
	}
	for _, s := range inv.Servers {
		s.Blocked = slices.Clone(s.Blocked)
		out.Servers = append(out.Servers, s)
	}
	return out
}

// MaxFailed is how many destroyed failed containers the inventory keeps.
const MaxFailed = 10

// Destroyed moves a container that failed and was stopped out of the
// inventory, releasing its lease, and keeps it in Failed with why.
func (inv *Inventory) Destroyed(id, why string) {
	c := inv.Container(id)
	if c == nil {
		return
	}
	gone := *c
	gone.State, gone.Healthy, gone.Error = Failed, false, Clip(why)
	inv.RemoveContainer(id)
	inv.Failed = append(inv.Failed, gone)
	if len(inv.Failed) > MaxFailed {
		inv.Failed = slices.Clone(inv.Failed[len(inv.Failed)-MaxFailed:])
	}
}

// Forget drops a lost server and every container on it (they went with
// it: their leases go too), and returns how many containers.
func (inv *Inventory) Forget(server string) int {
	n := 0
	for _, c := range inv.OnServer(server) {
		inv.RemoveContainer(c.ID)
		n++
	}
	inv.RemoveServer(server)
	return n
}

// Lose marks a server lost: each of its containers that is not already
// failed fails with why (it no longer counts as an instance, so it is
// replaced elsewhere) but keeps its lease, since its process may still run
// behind a partition. It returns the containers it failed, in ID order.
func (inv *Inventory) Lose(server, why string) []Container {
	s := inv.Server(server)
	if s == nil {
		return nil
	}
	why = Clip(why)
	s.State, s.Error = ServerLost, why
	var lost []Container
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.Server != server || c.State == Failed {
			continue
		}
		c.State, c.Healthy, c.Crashed, c.Error = Failed, false, false, why
		lost = append(lost, *c)
	}
	return lost
}

// Fenced records that a lost server came back and its node stopped every
// container the Manager had given up on: they are destroyed (their leases
// released) and the server is ready again. It returns how many went.
func (inv *Inventory) Fenced(server string) int {
	s := inv.Server(server)
	if s == nil {
		return 0
	}
	n := 0
	for _, c := range inv.OnServer(server) {
		if c.State == Failed || c.State == Draining {
			inv.Destroyed(c.ID, c.Error)
			n++
		}
	}
	if s.State == ServerLost {
		s.State, s.Error = ServerReady, ""
	}
	return n
}

// UsedByServer is the slots the containers on each server hold, with slots
// giving each service's slots per instance (a waiting container holds one).
func (inv *Inventory) UsedByServer(slots func(service string) int) map[string]int {
	out := map[string]int{}
	for _, c := range inv.Containers {
		out[c.Server] += slots(c.Service)
	}
	return out
}

// Server returns the server with the given ID, or nil.
func (inv *Inventory) Server(id string) *Server {
	for range 2 {
		i, ok := inv.indexed()[id]
		if ok && i < len(inv.Servers) && inv.Servers[i].ID == id {
			return &inv.Servers[i]
		}
		// A miss proves nothing if the slice changed under the index (the
		// ID found at the wrong place, or another count): rebuild once.
		if !ok && len(inv.idx) == len(inv.Servers) {
			return nil
		}
		inv.idx = nil
	}
	return nil
}

// Container returns the container with the given ID, or nil. Containers
// are recorded in the order of their IDs' sequence numbers (NextContainerID
// only grows), so it is a binary search; an inventory written in another
// order (by hand, in a test) is walked when the search misses.
func (inv *Inventory) Container(id string) *Container {
	if i := inv.position(id); i >= 0 {
		return &inv.Containers[i]
	}
	return nil
}

// position is where a container is in Containers, or -1.
func (inv *Inventory) position(id string) int {
	cs, n := inv.Containers, SeqOf(id)
	i, _ := slices.BinarySearchFunc(cs, n, func(c Container, n int) int { return cmp.Compare(SeqOf(c.ID), n) })
	for ; i < len(cs) && SeqOf(cs[i].ID) == n; i++ {
		if cs[i].ID == id {
			return i
		}
	}
	return slices.IndexFunc(cs, func(c Container) bool { return c.ID == id })
}

// AddServer records a server, keeping servers sorted by ID.
func (inv *Inventory) AddServer(s Server) {
	if inv.Server(s.ID) != nil {
		return
	}
	inv.Servers = append(inv.Servers, s)
	slices.SortFunc(inv.Servers, func(a, b Server) int { return strings.Compare(a.ID, b.ID) })
	inv.idx = nil
}

// RemoveServer forgets a server (its containers are the caller's).
func (inv *Inventory) RemoveServer(id string) {
	inv.Servers = slices.DeleteFunc(inv.Servers, func(s Server) bool { return s.ID == id })
	inv.idx = nil
}

// RemoveContainer forgets a container, which releases its port lease.
func (inv *Inventory) RemoveContainer(id string) {
	if i := inv.position(id); i >= 0 {
		inv.Containers = slices.Delete(inv.Containers, i, i+1)
	}
}

// addContainer records a new container (its ID is new: NextContainerID,
// so it goes last in sequence order).
func (inv *Inventory) addContainer(c Container) {
	inv.Containers = append(inv.Containers, c)
}

// NextContainerID returns a new container ID, unique within the manager and
// across continue-as-new, and so usable as the idempotency key of its start.
func (inv *Inventory) NextContainerID(manager string) string {
	inv.Seq++
	return manager + "-c" + strconv.Itoa(inv.Seq)
}

// OnServer returns the containers on one server, in ID order.
func (inv *Inventory) OnServer(server string) []Container {
	var out []Container
	for _, c := range inv.Containers {
		if c.Server == server {
			out = append(out, c)
		}
	}
	return out
}

// Instances counts the containers assigned to a service (starting or
// loaded: a failed or draining one is not an instance, so it gets replaced)
// and how many of them are healthy.
func (inv *Inventory) Instances(service string) (assigned, ready int) {
	for _, c := range inv.Containers {
		if c.Service != service || c.State == Draining || c.State == Failed {
			continue
		}
		assigned++
		if c.State == Loaded && c.Healthy {
			ready++
		}
	}
	return assigned, ready
}

// ReadyByService counts each service's healthy instances, as Instances
// does for one, in a single walk.
func (inv *Inventory) ReadyByService() map[string]int {
	out := map[string]int{}
	for _, c := range inv.Containers {
		if c.State == Loaded && c.Healthy && c.Service != "" {
			out[c.Service]++
		}
	}
	return out
}

// draining reports whether a container sits on a server being drained.
func (inv *Inventory) draining(c Container) bool {
	s := inv.Server(c.Server)
	return s != nil && s.State == ServerDraining
}

// stays reports whether a container is an instance (starting or loaded:
// not draining nor failed) that will still serve once the drains of the
// servers in draining are done.
func (c Container) stays(draining map[string]bool) bool {
	return c.State != Draining && c.State != Failed && !draining[c.Server]
}

// WarmPool counts containers of the Manager's image that are, or will be,
// waiting.
func (inv *Inventory) WarmPool() int { return inv.PoolOf("") }

// PoolOf counts the containers of image ("" the Manager's) that are, or
// will be, waiting.
func (inv *Inventory) PoolOf(image string) int {
	n := 0
	for _, c := range inv.Containers {
		if c.Image == image && ((c.Service == "" && (c.State == Waiting || c.State == Starting)) || (c.State == Draining && c.Unloading)) && !inv.draining(c) {
			n++
		}
	}
	return n
}

// Pooled counts the containers of every warm pool of cat that are, or
// will be, waiting.
func (inv *Inventory) Pooled(cat *catalog.Catalog) int {
	n := 0
	for _, p := range cat.Manager.Pools() {
		n += inv.PoolOf(p.Image)
	}
	return n
}
