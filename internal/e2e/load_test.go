package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestLoadExtendsThenShrinksBack: a load generator drives web over its CPU
// threshold; its agent reports the overload and the Manager extends web,
// loading the waiting container first, and goes on extending while the load
// lasts. When the load stops, the agents report idle and web shrinks back
// to its initial replicas after the (shortened) window, and the warm pool
// is full again.
func TestLoadExtendsThenShrinksBack(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 8, warmPool: 1,
		services: map[string]int{"web": 1}, order: []string{"web"},
		scaling: "{overload: 40, window: 1s, idle: 10, stabilization: 3s, cooldown: 2s, sample: 250ms}"})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web healthy", 60*time.Second, converged(1))
	var warm string
	for _, ct := range before.Containers {
		if ct.State == "waiting" {
			warm = ct.ID
		}
	}
	require.NotEmpty(t, warm)

	// The load: 3 clients per web instance, each asking for 100 ms of CPU
	// at a time, on every web instance status shows.
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	started := map[int]bool{}
	var waits []func()
	load := func(st workflows.Status) { // called from one goroutine: waitFor's
		for _, ct := range st.Containers {
			if ct.Service != "web" || ct.State != "loaded" || !ct.Healthy || started[ct.Port] {
				continue
			}
			started[ct.Port] = true
			waits = append(waits, drive(ctx, ct.Port, 3, "/work?ms=100"))
		}
	}
	load(before)
	grown := c.waitFor("web extended twice under load", 90*time.Second, func(st workflows.Status) bool {
		load(st)
		return st.Services[0].Ready >= 3
	})
	byID := map[string]workflows.ContainerStatus{}
	for _, ct := range grown.Containers {
		byID[ct.ID] = ct
	}
	assert.Equal(t, "web", byID[warm].Service, "the first extension loaded the waiting container")
	var events []string
	for _, e := range grown.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, fmt.Sprint(events), "overload reported by", "%q", events)
	stopLoad()
	for _, wait := range waits {
		wait()
	}

	st := c.waitFor("web back at its initial replicas, warm pool full", 90*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && st.Services[0].Desired == 1 && st.Services[0].Ready == 1
	})
	events = events[:0]
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, fmt.Sprint(events), "idle reported by", "%q", events)
	c.assertFleet(st, 2)
	// The agents left their reports to their node, which passed them on
	// as its summaries (msm node --reports-every, 5 s by default).
	log, err := os.ReadFile(filepath.Join(c.dir, "s1.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "passed the agents' reports on")
}

// TestRequestsInFlightExtend: a service that reports its requests in flight
// is extended when they stay above its threshold, even at low CPU.
func TestRequestsInFlightExtend(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 8,
		services: map[string]int{"web": 1}, order: []string{"web"},
		scaling: "{in_flight: 2, overload: 100000, window: 1s, cooldown: 30s, sample: 250ms}"})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	st := c.waitFor("web healthy", 60*time.Second, converged(0))
	port := st.Containers[0].Port

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	wait := drive(ctx, port, 5, "/sleep?ms=500")
	st = c.waitFor("web extended on requests in flight", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 2
	})
	stop()
	wait()
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, fmt.Sprint(events), "requests in flight, above 2", "%q", events)
}
