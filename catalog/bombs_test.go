package catalog

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bombCatalog is a valid catalog whose web service takes args and
// replicas as given.
func bombCatalog(args, replicas string) string {
	return `manager:
  servers:
    - name: local-1
      address: 127.0.0.1
      slots: 8
      ports: 21000-21099
services:
  - name: web
    command: bin/demo
    args: ` + args + `
    replicas: ` + replicas + `
`
}

// aliasedServers is a catalog of n servers, each an alias of one anchored
// server: a few bytes each, all on one address and one port range.
func aliasedServers(n int) string {
	var b strings.Builder
	b.WriteString("manager:\n  servers:\n    - &s {name: s, address: 127.0.0.1, slots: 1, ports: 21000-21099}\n")
	for range n - 1 {
		b.WriteString("    - *s\n")
	}
	b.WriteString("services:\n  - {name: web, command: bin/demo, replicas: {max: 1}}\n")
	return b.String()
}

// aliasedServices is a catalog of n aliases of one service of m args: a
// few bytes each, n×m values once expanded.
func aliasedServices(n, m int) string {
	var b strings.Builder
	b.WriteString("manager:\n  servers:\n    - {name: s, address: 127.0.0.1, slots: 8, ports: 21000-21099}\n")
	b.WriteString("services:\n  - &s {name: web, command: bin/demo, replicas: {max: 1}, args: [" + strings.Repeat("x,", m-1) + "x]}\n")
	for range n - 1 {
		b.WriteString("  - *s\n")
	}
	return b.String()
}

// manyServers is a catalog listing n servers, one line each.
func manyServers(n int) string {
	var b strings.Builder
	b.WriteString("manager:\n  servers:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - {name: s%d, address: h%d, slots: 1, ports: 21000-21001}\n", i, i)
	}
	b.WriteString("services:\n  - {name: web, command: bin/demo, replicas: {max: 1}}\n")
	return b.String()
}

// manyServices is a catalog listing n services, one line each.
func manyServices(n int) string {
	var b strings.Builder
	b.WriteString("manager:\n  servers:\n    - {name: s, address: 127.0.0.1, slots: 8, ports: 21000-21099}\n")
	b.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: w%d, command: bin/demo, replicas: {min: 0, max: 1}}\n", i)
	}
	return b.String()
}

// TestBombsAreRefusedCheaply: catalogs written to exhaust the memory or
// the time of whatever parses them (msm catalog validate, the worker, the
// Manager) are refused with the file and line of the cause, allocating
// at most 100 MB each.
func TestBombsAreRefusedCheaply(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"a thousand aliases of one server, every pair overlapping", aliasedServers(2000), "catalog.yaml:"},
		// 25 KB for 6 million values: 17.8 s and 859 MB before MaxValues.
		{"3,000 aliases of a service of 2,000 args", aliasedServices(3000, 2000), "catalog.yaml:5: services[99].args[1391]: the catalog holds more than 200000 values"},
		// fmt refuses widths past a million, so 200 of those.
		{"template output of 200 MB", bombCatalog(`["`+strings.Repeat(`{{printf \"%0999999d\" 0}}`, 100)+strings.Repeat(`{{printf \"%0*d\" 999999 0}}`, 100)+`"]`, "{max: 1}"),
			"catalog.yaml:10: services[0].args[0]: template fails on sample data (the template renders to more than 65536 bytes"},
		{"a template that calls itself", bombCatalog(`["{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}"]`, "{max: 1}"),
			"catalog.yaml:10: services[0].args[0]: invalid template: {{define}} and {{block}} are not allowed"},
		{"a range over a billion", bombCatalog(`["{{range 1000000000}}{{end}}"]`, "{max: 1}"),
			"catalog.yaml:10: services[0].args[0]: invalid template: {{range}} is not allowed"},
		{"a billion replicas", bombCatalog(`[]`, "{min: 1, initial: 1, max: 1000000000}"), "catalog.yaml:11: services[0].replicas"},
		{"a file of 2 MB", bombCatalog(`["`+strings.Repeat("x", 2<<20)+`"]`, "{max: 1}"), "catalog.yaml: the catalog is 2097"},
		{"an argument of 100 KB", bombCatalog(`["`+strings.Repeat("x", 100<<10)+`"]`, "{max: 1}"),
			"catalog.yaml:10: services[0].args[0]: the value is 102400 bytes, more than 65536"},
		{"11,000 servers", manyServers(11000), "catalog.yaml:2: manager.servers: the catalog lists 11000 servers, more than 10000"},
		{"6,000 services", manyServices(6000), "catalog.yaml:4: services: the catalog lists 6000 services, more than 5000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			begin := time.Now()
			_, err := Parse([]byte(tc.yaml), "catalog.yaml")
			took := time.Since(begin)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("refused in %s, %d MB allocated", took.Round(time.Millisecond), alloc>>20)
			require.Error(t, err)
			msg := err.Error()
			if len(msg) > 2000 {
				msg = msg[:2000] + fmt.Sprintf("… (%d bytes)", len(err.Error()))
			}
			assert.Contains(t, msg, tc.want)
			assert.Less(t, alloc, uint64(100<<20), "allocated %d MB refusing it", alloc>>20)
			assert.Less(t, len(err.Error()), 64<<10, "the refusal is a readable size")
		})
	}
}
