package clustertest

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

func TestStandaloneIsAValidCatalog(t *testing.T) {
	servers := Servers(2, 4, 22000, 20)
	servers[1].Slots = 1
	yaml := Standalone("  warm_pool: 1\n", servers, "  - name: web\n    command: /bin/true\n    replicas: {min: 1, initial: 2, max: 8}\n")
	assert.Equal(t, `manager:
  kind: standalone
  warm_pool: 1
  servers:
    - {name: s1, address: 127.0.0.1, slots: 4, ports: 22000-22019}
    - {name: s2, address: 127.0.0.1, slots: 1, ports: 22020-22039}
services:
  - name: web
    command: /bin/true
    replicas: {min: 1, initial: 2, max: 8}
`, yaml)
	_, err := catalog.Parse([]byte(yaml), "catalog.yaml")
	require.NoError(t, err)
}

func TestBlocks(t *testing.T) {
	tests := []struct {
		name   string
		blocks *Blocks
		want   []int
	}{
		{name: "from the one after Start", blocks: &Blocks{First: 24000, Size: 300, Count: 20}, want: []int{24300, 24600, 24900}},
		{name: "round", blocks: &Blocks{First: 22000, Size: 100, Count: 3, Start: 1}, want: []int{22200, 22000, 22100, 22200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for range tc.want {
				got = append(got, tc.blocks.Next())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBlocksPassOverATakenOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	b := &Blocks{First: port, Size: 1, Count: 2, Start: 1, SkipTaken: true}
	assert.Equal(t, port+1, b.Next(), "the block holding "+strconv.Itoa(port)+" is passed over")
}

func TestBlocksPassOverOneAnotherHolds(t *testing.T) {
	dir := t.TempDir()
	// Two runs on one machine: each its own Blocks, one lock directory.
	a := &Blocks{First: 40000, Size: 10, Count: 3, LockDir: dir}
	b := &Blocks{First: 40000, Size: 10, Count: 3, LockDir: dir}
	assert.Equal(t, 40010, a.Next())
	assert.Equal(t, 40020, b.Next(), "40010 is a's: b passes over it")
	assert.Equal(t, 40000, b.Next())
	assert.Equal(t, 40010, b.Next(), "every block held: after Count tries the next one anyway")
	assert.FileExists(t, filepath.Join(dir, "40010.lock"))
}
