package fleet

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// now is the time the strategy tests decide at.
var now = time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)

// decideCase is one row of a strategy's table: a state, the operations it
// decides (opString of each), and what is left to name.
type decideCase struct {
	name       string
	state      State
	ops        []string
	extending  []string
	recovering []string
	// reasons are substrings of each op's reason, in order (optional).
	reasons []string
}

// runDecide runs a strategy table: the ops decided, what is left to name,
// the reasons, and that the decision changed nothing of its input and
// records, through Apply, exactly what the strategies decided on.
func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := json.Marshal(tc.state.Inventory)
			require.NoError(t, err)
			d := Decide(tc.state, now)
			after, err := json.Marshal(tc.state.Inventory)
			require.NoError(t, err)
			assert.JSONEq(t, string(before), string(after), "Decide changed its input")
			var got []string
			for _, op := range d.Ops {
				got = append(got, opString(op))
			}
			assert.Equal(t, tc.ops, got)
			assert.Equal(t, tc.extending, d.Extending, "extending left to name")
			assert.Equal(t, tc.recovering, d.Recovering, "recovering left to name")
			for i, r := range tc.reasons {
				if assert.Less(t, i, len(d.Ops)) {
					assert.Contains(t, d.Ops[i].Reason, r)
				}
			}
			requireApplied(t, tc.state.Inventory, d)
		})
	}
}

// requireApplied asserts that Apply of d to a copy of inv makes what the
// strategies decided on.
func requireApplied(t *testing.T, inv *Inventory, d Decision) {
	t.Helper()
	got := inv.Clone()
	got.Apply(d)
	want, err := json.Marshal(d.next)
	require.NoError(t, err)
	have, err := json.Marshal(&got)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(have), "Apply records the decision as decided")
}

// opString is an op in a line: kind, name, then its plan.
func opString(op Op) string {
	var b strings.Builder
	b.WriteString(string(op.Kind))
	if op.Name != "" {
		b.WriteString(" " + op.Name)
	}
	b.WriteString(":")
	for _, s := range op.Place.Servers {
		fmt.Fprintf(&b, " launch %s", s.ID)
	}
	for _, c := range op.Place.Starts {
		fmt.Fprintf(&b, " start %s@%s:%d%s%s", c.ID, c.Server, c.Port, forService(c.Service), ofImage(c.Image))
	}
	for _, c := range op.Place.Loads {
		fmt.Fprintf(&b, " load %s%s%s", c.ID, forService(c.Service), ofImage(c.Image))
	}
	for _, c := range op.Remove.Unloads {
		fmt.Fprintf(&b, " unload %s", c.ID)
	}
	for _, c := range op.Remove.Destroys {
		fmt.Fprintf(&b, " destroy %s", c.ID)
	}
	for _, s := range op.Remove.Release {
		fmt.Fprintf(&b, " release %s", s)
	}
	if op.Drain != "" {
		fmt.Fprintf(&b, " drain %s", op.Drain)
	}
	return b.String()
}

// ofImage shows a container's own image, " of IMAGE".
func ofImage(image string) string {
	if image == "" {
		return ""
	}
	return " of " + image
}

func forService(s string) string {
	if s == "" {
		return ""
	}
	return "=" + s
}

// big are servers of 4 slots.
var (
	big1 = host("s1", 4, 20000, 20009)
	big2 = host("s2", 4, 21000, 21009)
)

// crashed is a failed instance its agent reported.
func crashed(id, server string, port int, service string) Container {
	return Container{ID: id, Server: server, Port: port, State: Failed, Service: service, Crashed: true, Registered: true}
}

// twoServers is web ×2 and api ×1 on s1, a waiting container on s2, and
// s2's room: the fleet most strategy tables start from.
func twoServers(containers ...Container) *Inventory {
	inv := &Inventory{Seq: 9, Servers: []Server{ready(big1), ready(big2)}}
	inv.Containers = append(inv.Containers, containers...)
	return inv
}

// webAPI is the catalog of twoServers: web 2, api 1, a warm pool of 1.
func webAPI(warm int) *catalog.Catalog {
	return cat(warm, []catalog.Server{big1, big2}, svc("web", 2, 1), svc("api", 1, 1))
}

func TestDecideOnNothingToDoDecidesNothing(t *testing.T) {
	runDecide(t, []decideCase{{
		name: "every service at desired and the pool full",
		state: State{Manager: mgr, Catalog: webAPI(1), Inventory: twoServers(
			loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"),
			waiting("m-c4", "s2", 21000))},
	}})
}
