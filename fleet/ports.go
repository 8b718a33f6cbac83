package fleet

import (
	"fmt"

	"github.com/msm-project/msm/catalog"
)

// PortIndex is the port book of one server: which ports of its range are
// leased, to whom, and which are blocked by processes msm does not own. It is
// rebuilt from the inventory whenever a decision needs it, so the inventory's
// container records stay the single source of truth for leases.
type PortIndex struct {
	Range   catalog.PortRange
	holders map[int]string
	blocked map[int]bool
	// taken counts the ports of the range leased or blocked, so a book
	// tells its free ports without a walk of the range.
	taken int
}

// NewPortIndex returns an empty book for the range.
func NewPortIndex(r catalog.PortRange) *PortIndex {
	return &PortIndex{Range: r, holders: map[int]string{}, blocked: map[int]bool{}}
}

// Ports builds the book of one server from the inventory. A collision in the
// inventory (which must never happen) is returned as an error, not hidden.
func (inv *Inventory) Ports(server string) (*PortIndex, error) {
	s := inv.Server(server)
	if s == nil {
		return nil, fmt.Errorf("unknown server %q", server)
	}
	p := NewPortIndex(s.Ports)
	for _, b := range s.Blocked {
		p.Block(b)
	}
	for _, c := range inv.Containers {
		if c.Server != server || c.Port == 0 {
			continue
		}
		if err := p.Claim(c.Port, c.ID); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Claim records that holder leases port. It fails if the port is outside the
// range, blocked, or held by another holder; claiming one's own port again is
// fine.
func (p *PortIndex) Claim(port int, holder string) error {
	if port < p.Range.First || port > p.Range.Last {
		return fmt.Errorf("port %d is outside the range %d-%d", port, p.Range.First, p.Range.Last)
	}
	if p.blocked[port] {
		return fmt.Errorf("port %d is held by a process msm does not own", port)
	}
	h, ok := p.holders[port]
	if ok && h != holder {
		return fmt.Errorf("port %d is already leased to %s, not to %s", port, h, holder)
	}
	if !ok {
		p.taken++
	}
	p.holders[port] = holder
	return nil
}

// Block marks a port as held outside msm, so it is never leased.
func (p *PortIndex) Block(port int) {
	if p.blocked[port] {
		return
	}
	if _, held := p.holders[port]; !held && port >= p.Range.First && port <= p.Range.Last {
		p.taken++
	}
	p.blocked[port] = true
}

// Lease gives holder the lowest free port of the range.
func (p *PortIndex) Lease(holder string) (int, error) {
	for port := p.Range.First; port <= p.Range.Last; port++ {
		if _, held := p.holders[port]; held || p.blocked[port] {
			continue
		}
		p.holders[port] = holder
		p.taken++
		return port, nil
	}
	return 0, p.exhausted()
}

// free counts the ports of the range that are neither leased nor blocked.
func (p *PortIndex) free() int { return max(p.Range.Size()-p.taken, 0) }

// exhausted is the error of a lease from a book with no free port.
func (p *PortIndex) exhausted() error {
	return fmt.Errorf("%w: all %d ports of %d-%d are leased or blocked",
		ErrNoPort, p.Range.Size(), p.Range.First, p.Range.Last)
}

// Holder returns who leases the port, or "".
func (p *PortIndex) Holder(port int) string { return p.holders[port] }

// Leased returns the leased ports in order.
func (p *PortIndex) Leased() []int {
	var out []int
	for port := p.Range.First; port <= p.Range.Last; port++ {
		if _, held := p.holders[port]; held {
			out = append(out, port)
		}
	}
	return out
}
