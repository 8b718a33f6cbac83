package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

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
	// LockDir, when set, makes a block this process's until it exits: Next
	// holds an exclusive lock on LockDir/BASE.lock and passes over a block
	// another process (or another Blocks) holds. SkipTaken sees only the
	// ports listened on when Next runs; two test runs on one machine (two
	// clones' `make test`) would otherwise pick one block a second apart
	// and take each other's ports.
	LockDir string

	n atomic.Int64
}

// Next is the first port of the next block.
func (b *Blocks) Next() int {
	for tries := 0; ; tries++ {
		base := b.First + int((int64(b.Start)+b.n.Add(1))%int64(b.Count))*b.Size
		if tries >= b.Count {
			return base
		}
		if b.SkipTaken && !free(base, b.Size) {
			continue
		}
		if b.LockDir == "" || lock(b.LockDir, base) {
			return base
		}
	}
}

// lock takes the lock of the block at base for the rest of this process
// (the kernel releases it at exit, however the process ends); false if
// another holds it. A lock that cannot be made at all (no such directory,
// no flock) does not hold the block back.
func lock(dir string, base int) bool {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", base)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return err != syscall.EWOULDBLOCK
	}
	heldMu.Lock()
	held = append(held, f) // open, and so locked, until the process exits
	heldMu.Unlock()
	return true
}

// held keeps the locked files from the garbage collector, whose finalizer
// would close them and release their blocks.
var (
	heldMu sync.Mutex
	held   []*os.File
)

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
