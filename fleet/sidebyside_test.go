package fleet

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/catalog"
)

// TestPlansLeaveWhatRunningOperationsHold: a decision made while other
// operations run places nothing on the servers they launch or release,
// takes none of their waiting containers, and removes nothing of the
// services (or the warm pool) they work on.
func TestPlansLeaveWhatRunningOperationsHold(t *testing.T) {
	c := cat(1, []catalog.Server{s1, s2}, svc("web", 2, 1), svc("api", 1, 1))
	base := func() Inventory {
		return Inventory{Seq: 3, Servers: []Server{ready(s1), ready(s2)}, Containers: []Container{
			loaded("m-c1", "s1", 20000, "web"),
			waiting("m-c2", "s1", 20001),
			loaded("m-c3", "s2", 21000, "api"),
		}}
	}
	scale := []struct {
		name   string
		o      Options
		starts []Container
		loads  []string
	}{
		{name: "nothing held: the waiting container, then the emptiest server", loads: []string{"m-c2"},
			starts: []Container{starting("m-c4", "s2", 21001, "")}},
		{name: "s1 held: its waiting container stays (still the pool), web's goes to s2", o: Options{Avoid: []string{"s1"}},
			starts: []Container{starting("m-c4", "s2", 21001, "web")}},
		{name: "web held: only the pool (already full) is looked at", o: Options{Hold: []string{"web"}}},
		{name: "every server with room held: nothing placed, and no lack of room reported (it waits)", o: Options{Avoid: []string{"s1", "s2"}}},
	}
	// A server held with no room is no reason to wait: demand it cannot
	// take is reported as usual.
	full := Inventory{Seq: 3, Servers: []Server{ready(s1)}, Containers: []Container{
		loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web")}}
	p := PlanScale(&full, cat(0, []catalog.Server{s1}, svc("web", 3, 1)), mgr, Options{Avoid: []string{"s1"}})
	assert.Len(t, p.Unplaced, 1, "%+v", p)
	for _, tc := range scale {
		t.Run(tc.name, func(t *testing.T) {
			inv := base()
			p := PlanScale(&inv, c, mgr, tc.o)
			assert.Equal(t, tc.starts, p.Starts)
			assert.Equal(t, tc.loads, containerIDs(p.Loads))
			assert.Empty(t, p.Unplaced)
			for _, st := range p.Starts {
				assert.NotContains(t, tc.o.Avoid, st.Server)
			}
		})
	}

	crashed := Container{ID: "m-c4", Server: "s2", Port: 21001, State: Failed, Service: "web", Crashed: true}
	shrink := []struct {
		name     string
		hold     []string
		destroys []string
	}{
		{name: "nothing held: web's surplus (emptiest server first) and its crash go", destroys: []string{"m-c1", "m-c4"}},
		{name: "web held: neither goes while its operation runs", hold: []string{"web"}},
		{name: "api held: web's still go", hold: []string{"api"}, destroys: []string{"m-c1", "m-c4"}},
	}
	for _, tc := range shrink {
		t.Run(tc.name, func(t *testing.T) {
			inv := base()
			inv.Containers = append(inv.Containers, crashed, loaded("m-c5", "s2", 21002, "web"), loaded("m-c6", "s2", 21003, "web"))
			p := PlanShrink(&inv, c, nil, tc.hold...)
			assert.Equal(t, tc.destroys, containerIDs(p.Destroys))
		})
	}
}

// TestUnloadsInFlightCountInThePool: an instance on its way back to the
// pool (a Shrink running beside this decision) is part of the pool
// already: no refill is started for it, and no other instance is unloaded
// into a pool it fills.
func TestUnloadsInFlightCountInThePool(t *testing.T) {
	c := cat(1, []catalog.Server{b4}, svc("web", 1, 1), svc("api", 1, 1))
	unloading := loaded("m-c1", "b4", 20000, "web")
	unloading.State, unloading.Unloading = Draining, true
	inv := Inventory{Seq: 3, Servers: []Server{ready(b4)}, Containers: []Container{
		unloading, loaded("m-c2", "b4", 20001, "web"), loaded("m-c3", "b4", 20002, "api"), loaded("m-c4", "b4", 20003, "api")}}
	assert.Equal(t, 1, inv.WarmPool())
	assert.True(t, PlanScale(&inv, c, mgr, Options{}).Empty(), "no refill for the instance unloading")
	p := PlanShrink(&inv, c, nil)
	assert.Empty(t, p.Unloads, "the pool is full with the one unloading")
	assert.Equal(t, []string{"m-c4"}, containerIDs(p.Destroys))
}

// TestShrinkReleasesNoServerARunningOperationHolds: a draining server left
// empty is released by the shrink that emptied it, not again by another
// decided while that one runs.
func TestShrinkReleasesNoServerARunningOperationHolds(t *testing.T) {
	c := cat(0, []catalog.Server{s1, s2}, svc("web", 1, 1))
	drained := ready(s1)
	drained.State = ServerDraining
	inv := func() Inventory {
		return Inventory{Seq: 2, Servers: []Server{drained, ready(s2)}, Containers: []Container{loaded("m-c2", "s2", 21000, "web")}}
	}
	i := inv()
	assert.Equal(t, []string{"s1"}, PlanShrinkWith(&i, c, Options{}).Release)
	i = inv()
	assert.Empty(t, PlanShrinkWith(&i, c, Options{Avoid: []string{"s1"}}).Release)
}
