package clustertest

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/msm-project/msm/internal/hostport"
)

// Server is a server of a standalone catalog.
type Server struct {
	Name, Address string
	Slots         int
	First, Last   int // its port range
}

// Servers is s1..sN on 127.0.0.1, of slots each, on consecutive port
// ranges of width ports from base.
func Servers(n, slots, base, width int) []Server {
	out := make([]Server, n)
	for i := range out {
		first := base + i*width
		out[i] = Server{Name: fmt.Sprintf("s%d", i+1), Address: "127.0.0.1", Slots: slots, First: first, Last: first + width - 1}
	}
	return out
}

// Standalone is a catalog of the standalone kind: manager holds the lines
// under `manager:` after the kind, services those under `services:`, both
// indented as in a catalog.
func Standalone(manager string, servers []Server, services string) string {
	var b strings.Builder
	b.WriteString("manager:\n  kind: standalone\n" + manager + "  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "    - {name: %s, address: %s, slots: %d, ports: %d-%d}\n", s.Name, s.Address, s.Slots, s.First, s.Last)
	}
	b.WriteString("services:\n" + services)
	return b.String()
}

// Blocks hands out port blocks, one a cluster: Count blocks of Size ports
// from First, going round from the one after Start, so that the clusters
// of one run never share one (up to Count of them), and runs that start
// elsewhere rarely meet.
type Blocks struct {
	First, Size, Count, Start int
	// SkipTaken passes over a block some process of this host holds a
	// port of (a server of another package's tests), which would move a
	// container to another port or server and a test's layout with it;
	// after Count tries Next takes the next block anyway.
	SkipTaken bool

	n atomic.Int64
}

// Next is the first port of the next block.
func (b *Blocks) Next() int {
	for tries := 0; ; tries++ {
		base := b.First + int((int64(b.Start)+b.n.Add(1))%int64(b.Count))*b.Size
		if !b.SkipTaken || tries >= b.Count || free(base, b.Size) {
			return base
		}
	}
}

// free reports whether nothing on this host listens on a port of the n
// ports from base.
func free(base, n int) bool {
	for p := base; p < base+n; p++ {
		if hostport.Free(p) != nil {
			return false
		}
	}
	return true
}
