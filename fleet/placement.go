package fleet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
)

// Plan is a decided set of changes for one Provision operation. The Manager
// records it in the inventory before the operation runs, so the leases and
// container IDs it holds are never handed out twice, whatever crashes.
type Plan struct {
	// Servers to launch before their containers start.
	Servers []Server `json:"servers,omitempty"`
	// Starts are new containers; Service is "" for a warm-pool container.
	Starts []Container `json:"starts,omitempty"`
	// Loads are waiting containers told to load a service.
	Loads []Container `json:"loads,omitempty"`
	// Unplaced says, per service, what could not be placed and why.
	Unplaced []Unplaced `json:"unplaced,omitempty"`
	// Capped says the plan reached Options.Limit with demand left over.
	Capped bool `json:"capped,omitempty"`
}

// Unplaced is demand that no server could take.
type Unplaced struct {
	Service string `json:"service"` // "" for the warm pool
	Count   int    `json:"count"`
	// Code is the reason as one word of UnplacedCodes (a metric's label);
	// Reason says it with the figures.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
}

// Why demand was not placed (Unplaced.Code).
const (
	// UnplacedNoRoom: no server in use has the slots and a free port, and
	// the kind launches none (every listed server is in use).
	UnplacedNoRoom = "no_room"
	// UnplacedMaxServers: the launching kind is at its max_servers.
	UnplacedMaxServers = "max_servers"
	// UnplacedShapeTooSmall: a server of the kind has fewer slots than
	// one instance of the service needs.
	UnplacedShapeTooSmall = "server_too_small"
	// UnplacedPortLease: the server chosen had no port to lease.
	UnplacedPortLease = "port_lease"
)

// UnplacedCodes are every Unplaced.Code, for the metrics' documentation.
var UnplacedCodes = []string{UnplacedNoRoom, UnplacedMaxServers, UnplacedShapeTooSmall, UnplacedPortLease}

// Source is where one instance of a placement comes from.
type Source string

// Sources of an instance, cheapest first: the extension order.
const (
	SourceWarmPool     Source = "warm_pool"     // a waiting container loads it
	SourceNewContainer Source = "new_container" // a container started on a server in use
	SourceNewServer    Source = "new_server"    // a container on a server the plan launches
)

// Sources counts, per service, where the plan's instances come from.
func (p Plan) Sources() map[string]map[Source]int {
	out := map[string]map[Source]int{}
	add := func(service string, s Source) {
		if out[service] == nil {
			out[service] = map[Source]int{}
		}
		out[service][s]++
	}
	launched := map[string]bool{}
	for _, s := range p.Servers {
		launched[s.ID] = true
	}
	for _, c := range p.Loads {
		add(c.Service, SourceWarmPool)
	}
	for _, c := range p.Starts {
		if launched[c.Server] {
			add(c.Service, SourceNewServer)
		} else {
			add(c.Service, SourceNewContainer)
		}
	}
	return out
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Servers)+len(p.Starts)+len(p.Loads) == 0 }

// Services returns the services the plan touches, in catalog order.
func (p Plan) Services() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, c := range p.Loads {
		add(c.Service)
	}
	for _, c := range p.Starts {
		add(c.Service)
	}
	return out
}

// PlanProvision decides how to bring every catalog service up to its
// initial replicas and the warm pool up to its size, and applies the decision
// to inv (new containers are recorded as starting, loads as loaded and not yet
// healthy). For each missing instance it uses, in order: a waiting container;
// a new container on a server in use with free slots and a free port (the
// catalog's placement: spread, the server with the most free slots, by
// default; or bin-pack, the one with the fewest that fit); a new container on a catalog
// server not yet in use, which the plan launches.
//
// Services named in hold (in crash-loop back-off; "" is the warm pool) get
// nothing this time.
func PlanProvision(inv *Inventory, cat *catalog.Catalog, manager string, hold ...string) Plan {
	return PlanScale(inv, cat, manager, Options{Hold: hold})
}

// Options tune a decision.
type Options struct {
	// Desired is how many instances a service should have; nil means its
	// initial replicas.
	Desired func(catalog.Service) int
	// Hold names services (and "" for the warm pool) that get nothing now.
	Hold []string
	// Avoid names servers that get no new container now (and whose
	// waiting containers are not taken): servers an operation running
	// side by side launches or releases.
	Avoid []string
	// Limit caps the instances one plan starts or loads (0: no cap), so
	// that one operation's history stays short at fleet scale; what is
	// left is the next decision's (Plan.Capped says so).
	Limit int
	// PoolHeld says another operation holds the warm pool: a shrink
	// unloads nothing into it (what would go there waits).
	PoolHeld bool
	// Revision is the revision a service's new instances are loaded with
	// (nil: none is kept).
	Revision func(service string) string
	// Rolls are the services rolling to a new revision: a shrink removes
	// their old instances as the new ones serve (roll.go).
	Rolls []Roll
	// Now is the time of the decision (a roll's health grace).
	Now time.Time
	// Agents says agents follow their node (agents.go): a waiting
	// container whose agent is behind its node is not loaded, and the
	// shrink replaces it.
	Agents bool
}

// PlanScale is PlanProvision with each service brought up to
// o.Desired(service) instead of its initial replicas. It only adds: surplus
// instances are PlanShrink's. It walks the inventory once and then works
// per placement on what it learnt (slots used and port books per server,
// instances per service, the waiting containers), so one decision costs
// the fleet once plus the servers it looks at per instance placed.
func PlanScale(inv *Inventory, cat *catalog.Catalog, manager string, o Options) Plan {
	if cat.Manager.Launches() {
		// A launch that failed left a server with nothing on it: forget it,
		// so the next attempt launches anew (the event log keeps why).
		held := inv.perServer()
		if slices.ContainsFunc(inv.Servers, func(s Server) bool { return s.State == ServerFailed && held[s.ID] == 0 }) {
			inv.Servers = slices.DeleteFunc(inv.Servers, func(s Server) bool { return s.State == ServerFailed && held[s.ID] == 0 })
			inv.idx = nil
		}
	}
	return planScale(inv, newView(inv, slotsTable(cat)), cat, manager, o)
}

// planScale is PlanScale on a view of inv that the caller keeps: several
// placements of one decision share it, each seeing what the ones before
// recorded (a server they placed on has its port book in v already).
func planScale(inv *Inventory, v *view, cat *catalog.Catalog, manager string, o Options) Plan {
	hold := o.Hold
	desired := o.Desired
	if desired == nil {
		desired = func(s catalog.Service) int { return s.Replicas.Initial }
	}
	if o.Agents && v.nodes == nil {
		v.nodes = inv.NodeVersions()
	}
	var plan Plan
	// launch adds a new server of the kind's shape, named <manager>-s<n>,
	// while the kind may launch more.
	launch := func(need int) (*Server, *PortIndex, unplaced) {
		shape := cat.Manager.LaunchShape()
		if shape.Slots < need {
			return nil, nil, unplaced{UnplacedShapeTooSmall, fmt.Sprintf("a server of the %s kind offers %d slot(s), fewer than the %d needed", cat.Manager.Kind, shape.Slots, need)}
		}
		if n, most := inv.launched(), cat.Manager.LaunchMax(); n >= most {
			return nil, nil, unplaced{UnplacedMaxServers, fmt.Sprintf("no server in use has %d free slot(s) and a free port, and the %s kind has launched its max_servers (%d)", need, cat.Manager.Kind, most)}
		}
		inv.ServerSeq++
		s := Server{ID: manager + "-s" + strconv.Itoa(inv.ServerSeq), Slots: shape.Slots, Ports: shape.Ports, State: ServerLaunching}
		inv.AddServer(s)
		plan.Servers = append(plan.Servers, s)
		return inv.Server(s.ID), v.newServer(s), unplaced{}
	}
	// place finds a server for a new container needing need slots: one in
	// use with that many free slots and a port left to lease, else a catalog
	// server not yet in use, which the plan launches. It returns the server
	// with its port book, or why there is none.
	place := func(need int) (*Server, *PortIndex, unplaced) {
		var (
			best      *Server
			bestPorts *PortIndex
			bestFree  int
			noPort    []string // servers with the slots but no port to lease
			held      bool     // a server with room that a running operation holds
		)
		for i := range inv.Servers {
			s := &inv.Servers[i]
			if s.State == ServerFailed || s.State == ServerDraining || s.State == ServerLost {
				continue
			}
			free := s.Slots - v.used[s.ID]
			if slices.Contains(o.Avoid, s.ID) {
				held = held || free >= need
				continue
			}
			// Spread takes the server with the most free slots, bin-pack the
			// one with the fewest that still fit; ties keep the first.
			better := free > bestFree
			if cat.Manager.Placement == catalog.PlacementBinPack {
				better = best == nil || free < bestFree
			}
			if free < need || !better {
				continue
			}
			// Free slots are not room without a free port: such a server
			// would fail the lease on every decision while others have room.
			ports, err := v.portsOf(s.ID)
			if err == nil && ports.free() == 0 {
				err = ports.exhausted()
			}
			if err != nil {
				noPort = append(noPort, fmt.Sprintf("server %s: %v", s.ID, err))
				continue
			}
			best, bestPorts, bestFree = s, ports, free
		}
		if best != nil {
			return best, bestPorts, unplaced{}
		}
		if held {
			// Room there once that operation ends: wait for it rather than
			// launch a server or report no room.
			return nil, nil, unplaced{why: waitHeld}
		}
		if cat.Manager.Launches() {
			return launch(need)
		}
		for _, cs := range cat.Manager.Servers {
			if inv.Server(cs.Name) != nil || cs.Slots < need {
				continue
			}
			s := Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: ServerLaunching}
			inv.AddServer(s)
			plan.Servers = append(plan.Servers, s)
			return inv.Server(s.ID), v.newServer(s), unplaced{}
		}
		why := fmt.Sprintf("no server in use has %d free slot(s) and a free port, and no listed server not yet in use has %d slot(s)", need, need)
		if len(noPort) > 0 {
			why += " (" + strings.Join(noPort, "; ") + ")"
		}
		return nil, nil, unplaced{UnplacedNoRoom, why}
	}
	start := func(service, image string, need int) unplaced {
		rev := ""
		if service != "" {
			rev = revisionOf(o, service)
		}
		s, ports, why := place(need)
		if s == nil {
			return why
		}
		id := inv.NextContainerID(manager)
		port, err := ports.Lease(id)
		if err != nil {
			return unplaced{UnplacedPortLease, fmt.Sprintf("server %s: %v", s.ID, err)}
		}
		// Its agent is its node's (v.nodes only when agents follow it).
		c := Container{ID: id, Server: s.ID, Port: port, State: Starting, Service: service, Image: image, Revision: rev, Agent: v.nodes[s.ID]}
		inv.addContainer(c)
		v.used[s.ID] += need
		plan.Starts = append(plan.Starts, c)
		return unplaced{}
	}

	staying := v.staying()
	full := func() bool {
		plan.Capped = plan.Capped || o.Limit > 0 && len(plan.Starts)+len(plan.Loads) >= o.Limit
		return plan.Capped
	}
	for _, svc := range cat.Services {
		if slices.Contains(hold, svc.Name) {
			continue
		}
		// need counts slots the way used does, so an undefaulted Slots of 0
		// is one slot in both.
		need := slotsOf(svc.Name, v.slots)
		image := ImageOf(cat, svc)
		// Instances on a draining server are replaced elsewhere first.
		missing := desired(svc) - staying[svc.Name]
		for missing > 0 && !full() {
			if c := v.waitingFor(need, image, o.Avoid); c != nil {
				c.Service, c.State, c.Healthy = svc.Name, Loaded, false
				c.Revision = revisionOf(o, svc.Name)
				v.used[c.Server] += need - 1
				plan.Loads = append(plan.Loads, *c)
				missing--
				continue
			}
			if why := start(svc.Name, image, need); why.why != "" {
				if why.why != waitHeld {
					plan.Unplaced = append(plan.Unplaced, Unplaced{Service: svc.Name, Count: missing, Code: why.code, Reason: why.why})
				}
				break
			}
			missing--
		}
	}
	if !slices.Contains(hold, "") {
		// The Manager's image's pool first, then each service image's.
	pools:
		for _, p := range cat.Manager.Pools() {
			for missing := p.Size - inv.PoolOf(p.Image); missing > 0 && !full(); missing-- {
				if why := start("", p.Image, 1); why.why != "" {
					if why.why != waitHeld {
						plan.Unplaced = append(plan.Unplaced, Unplaced{Count: missing, Code: why.code, Reason: why.why})
					}
					break pools
				}
			}
		}
	}
	return plan
}

// revisionOf is the revision a new instance of service is loaded with.
func revisionOf(o Options, service string) string {
	if o.Revision == nil {
		return ""
	}
	return o.Revision(service)
}

// ImageOf is the image the containers of svc run when it is not the
// Manager's: the service's own on the docker kind, "" otherwise (the
// Manager's image, or a process kind).
func ImageOf(cat *catalog.Catalog, svc catalog.Service) string {
	if cat.Manager.Kind != catalog.KindDocker {
		return ""
	}
	return svc.Image
}

// unplaced is why an instance found no room: its Unplaced code and
// reason; the zero value means it was placed.
type unplaced struct{ code, why string }

// waitHeld is why a placement waits: the only servers with room are held
// by operations running side by side (Options.Avoid). It is no reason to
// report: the decision made when they end places it.
const waitHeld = "wait for the running operations"

// launched counts the servers a launching kind holds (a failed launch
// holds none).
func (inv *Inventory) launched() int {
	n := 0
	for _, s := range inv.Servers {
		if s.State != ServerFailed {
			n++
		}
	}
	return n
}

func slotsOf(service string, slots map[string]int) int {
	if n, ok := slots[service]; ok && n > 0 {
		return n
	}
	return 1
}
