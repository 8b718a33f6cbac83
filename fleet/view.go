package fleet

import (
	"fmt"
	"slices"

	"github.com/msm-project/msm/catalog"
)

// view is what one decision learns of the inventory in a single walk:
// slots used and containers per server, port books built on demand, and
// the waiting containers. A planner keeps it current as it records its
// decisions, so it never walks the whole fleet again per instance.
type view struct {
	inv   *Inventory
	slots map[string]int
	// used is the slots held per server (a waiting container holds one).
	used map[string]int
	// on are the positions in inv.Containers of each server's containers.
	on map[string][]int
	// books are the port books built so far, by server.
	books map[string]*PortIndex
	// waiting are the positions of the waiting containers, in ID order.
	waiting []int
	// nodes are the servers' node versions when agents follow their node
	// (Options.Agents): a waiting container whose agent is behind is not
	// taken.
	nodes map[string]string
}

func newView(inv *Inventory, slots map[string]int) *view {
	v := &view{inv: inv, slots: slots, used: map[string]int{}, on: map[string][]int{}, books: map[string]*PortIndex{}}
	for i, c := range inv.Containers {
		v.used[c.Server] += slotsOf(c.Service, slots)
		v.on[c.Server] = append(v.on[c.Server], i)
		if c.State == Waiting && c.Service == "" {
			v.waiting = append(v.waiting, i)
		}
	}
	return v
}

// portsOf is the port book of a server, built from its containers once
// per decision; the planner's leases go into it.
func (v *view) portsOf(server string) (*PortIndex, error) {
	if p := v.books[server]; p != nil {
		return p, nil
	}
	s := v.inv.Server(server)
	if s == nil {
		return nil, fmt.Errorf("unknown server %q", server)
	}
	p := NewPortIndex(s.Ports)
	for _, b := range s.Blocked {
		p.Block(b)
	}
	for _, i := range v.on[server] {
		c := v.inv.Containers[i]
		if c.Port == 0 {
			continue
		}
		if err := p.Claim(c.Port, c.ID); err != nil {
			return nil, err
		}
	}
	v.books[server] = p
	return p, nil
}

// newServer records a server the decision adds, with an empty book.
func (v *view) newServer(s Server) *PortIndex {
	p := NewPortIndex(s.Ports)
	v.books[s.ID] = p
	return p
}

// staying counts each service's instances that stay (Container.stays).
func (v *view) staying() map[string]int {
	out := map[string]int{}
	draining := v.inv.drainingServers()
	for _, c := range v.inv.Containers {
		if c.Service != "" && c.stays(draining) {
			out[c.Service]++
		}
	}
	return out
}

// waitingFor returns a waiting container of image ("" the Manager's)
// whose server is ready and has room for a service of need slots (the
// container already holds one), or nil: the first in ID order, as a walk
// of the inventory would find it. A service never gets a container of
// another image than its own.
func (v *view) waitingFor(need int, image string, avoid []string) *Container {
	for k, i := range v.waiting {
		c := &v.inv.Containers[i]
		if c.State != Waiting || c.Service != "" || c.Image != image || slices.Contains(avoid, c.Server) || AgentBehind(*c, v.nodes) {
			continue
		}
		s := v.inv.Server(c.Server)
		if s == nil || s.State != ServerReady || s.Slots-v.used[s.ID]+1 < need {
			continue
		}
		v.waiting = slices.Delete(v.waiting, k, k+1)
		return c
	}
	return nil
}

// slotsTable is each catalog service's slots per instance.
func slotsTable(cat *catalog.Catalog) map[string]int {
	slots := make(map[string]int, len(cat.Services))
	for _, s := range cat.Services {
		slots[s.Name] = s.Slots
	}
	return slots
}

// perServer counts the containers on each server.
func (inv *Inventory) perServer() map[string]int {
	n := map[string]int{}
	for _, c := range inv.Containers {
		n[c.Server]++
	}
	return n
}

// drainingServers is the set of servers being drained.
func (inv *Inventory) drainingServers() map[string]bool {
	out := map[string]bool{}
	for _, s := range inv.Servers {
		if s.State == ServerDraining {
			out[s.ID] = true
		}
	}
	return out
}
