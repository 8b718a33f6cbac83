package catalog

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Port numbers a range may use.
const (
	MinPort = 1
	MaxPort = 65535
)

// ParsePortRange reads a range written "FIRST-LAST", such as "20000-20099".
// It checks the form only; Validate checks the bounds, so that a catalog
// with a range like "0-10" gets a message about the bounds, not the syntax.
func ParsePortRange(s string) (PortRange, error) {
	first, last, ok := strings.Cut(strings.TrimSpace(s), "-")
	f, errF := strconv.Atoi(strings.TrimSpace(first))
	l, errL := strconv.Atoi(strings.TrimSpace(last))
	if !ok || errF != nil || errL != nil {
		return PortRange{}, fmt.Errorf("%q is not a port range; write it as FIRST-LAST, e.g. \"20000-20099\"", s)
	}
	return PortRange{First: f, Last: l}, nil
}

// String writes the range as "FIRST-LAST", the form ParsePortRange reads.
func (r PortRange) String() string {
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r == PortRange{} }

// Size is the number of ports in the range, 0 for an empty or reversed one.
func (r PortRange) Size() int {
	if r.Last < r.First {
		return 0
	}
	return r.Last - r.First + 1
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool {
	return port >= r.First && port <= r.Last
}

// overlap returns the ports both ranges hold, and whether there are any.
func (r PortRange) overlap(o PortRange) (PortRange, bool) {
	x := PortRange{First: max(r.First, o.First), Last: min(r.Last, o.Last)}
	return x, x.First <= x.Last
}

// UnmarshalYAML reads "FIRST-LAST".
func (r *PortRange) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("a port range is a single value; write it as FIRST-LAST, e.g. \"20000-20099\"")
	}
	pr, err := ParsePortRange(n.Value)
	if err != nil {
		return err
	}
	*r = pr
	return nil
}

// MarshalYAML writes "FIRST-LAST".
func (r PortRange) MarshalYAML() (any, error) {
	return r.String(), nil
}
