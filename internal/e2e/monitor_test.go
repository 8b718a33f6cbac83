package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/workflows"
)

// TestMonitoringScalesToTargetUtilization: with a target CPU per instance,
// the Manager scales from its nodes' usage reports alone (the agents'
// thresholds are out of reach here): out under load, back in to min once
// the load is gone for the stabilization window. Status shows the usage.
func TestMonitoringScalesToTargetUtilization(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 8,
		services: map[string]int{"web": 1}, order: []string{"web"},
		scaling:     "{target: 30, tolerance: 10, overload: 100000, idle: 1, stabilization: 3s, cooldown: 2s}",
		reportEvery: "1s"})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web healthy", 60*time.Second, converged(0))
	port := before.Containers[0].Port

	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	wait := drive(ctx, port, 2, "/work?ms=100")
	busy := c.waitFor("web scaled out by monitoring", 60*time.Second, func(st workflows.Status) bool {
		return st.Services[0].Desired >= 2
	})
	stopLoad()
	wait()
	assert.Positive(t, busy.Servers[0].CPU+busy.Servers[0].Memory, "server usage is shown")
	var events []string
	for _, e := range busy.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, fmt.Sprint(events), "monitoring: 1 instance(s) at", "%q", events)

	st := c.waitFor("web back to min", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Desired == 1 && st.Services[0].Ready == 1
	})
	c.assertFleet(st, 1)
}
