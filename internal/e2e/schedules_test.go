package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// temporalCLI runs the real temporal CLI (bin/temporal) against the
// cluster's dev server.
func (c *cluster) temporalCLI(args ...string) (string, error) {
	cmd := exec.Command(bins.temporal, append(args, "--address", c.srv.Address(), "--namespace", "default")...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// until polls fn every 250 ms until it holds, failing the test after
// timeout with what it last said.
func (c *cluster) until(what string, timeout time.Duration, fn func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, said := fn()
		if ok {
			return
		}
		last = said
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
}

// TestScheduleRaisesTheFloor (issue 16, acceptance 5): a service's schedule
// rule is a Temporal Schedule that `temporal schedule list` shows; triggered
// (`temporal schedule trigger`), it raises the service's floor and its
// instances; editing the rule updates the schedule (`temporal schedule
// describe`); removing it deletes the schedule, and the floor goes with it.
func TestScheduleRaisesTheFloor(t *testing.T) {
	s := spec{servers: 1, slots: 6, services: map[string]int{"web": 1}, order: []string{"web"},
		schedules: map[string]string{"web": `[{cron: "0 8 * * 1-5", min: 3}]`}}
	c := newCluster(t, s)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web healthy", 60*time.Second, converged(0))
	id := workflows.ScheduleID(c.manager, "web", 0)

	c.until("the rule's schedule in `temporal schedule list`", 60*time.Second, func() (bool, string) {
		out, err := c.temporalCLI("schedule", "list")
		return err == nil && strings.Contains(out, id), out
	})
	out, err := c.temporalCLI("schedule", "describe", "--schedule-id", id, "-o", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, workflows.WorkflowScheduledFloor)
	assert.Contains(t, out, `floor of web at 3 at \"0 8 * * 1-5\" (UTC)`)

	out, err = c.temporalCLI("schedule", "trigger", "--schedule-id", id)
	require.NoError(t, err, out)
	st := c.waitFor("web's floor and instances at 3", 60*time.Second, func(st workflows.Status) bool {
		return st.Services[0].Floor == 3 && st.Services[0].Desired == 3 && st.Settled(0)
	})
	assert.Equal(t, 3, st.Services[0].Ready)
	why, err := c.msm("why", "web")
	require.NoError(t, err)
	assert.Contains(t, why, "web: 3/3 ready, desired 3 (replicas 1..8, floor 3)")
	assert.Contains(t, why, "floor of 3 instance(s), set by schedule "+id)
	text, err := c.msm("status")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(strings.Fields(text), " "), "SERVICE READY DESIRED FLOOR web 3 3 3")
	// The run the schedule started is named for its rule.
	runs, err := c.temporalCLI("workflow", "list", "--query", "WorkflowType = 'ScheduledFloor' AND ExecutionStatus = 'Completed'")
	require.NoError(t, err, runs)
	assert.Contains(t, runs, workflows.FloorWorkflowID(c.manager, "web", 0)+"-")

	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveOperation("floor", "../../workflows/testdata/scheduled-floor.json")
	}

	// Edited: the schedule follows.
	s.schedules["web"] = `[{cron: "30 9 * * 1-5", min: 2, timezone: Europe/Paris}]`
	require.NoError(t, c.h.WriteCatalog(c.catalogYAML(s)))
	c.until("the schedule's new spec in `temporal schedule describe`", 60*time.Second, func() (bool, string) {
		out, err := c.temporalCLI("schedule", "describe", "--schedule-id", id, "-o", "json")
		return err == nil && strings.Contains(out, `\"30 9 * * 1-5\"`) && strings.Contains(out, "Europe/Paris"), out
	})
	out, err = c.temporalCLI("schedule", "describe", "--schedule-id", id, "-o", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, `floor of web at 2 at \"30 9 * * 1-5\" (Europe/Paris)`)

	// Removed: the schedule goes, and web's floor with it.
	s.schedules = nil
	require.NoError(t, c.h.WriteCatalog(c.catalogYAML(s)))
	c.until("the schedule gone", 60*time.Second, func() (bool, string) {
		out, err := c.temporalCLI("schedule", "describe", "--schedule-id", id)
		return err != nil && strings.Contains(strings.ToLower(out), "not found"), out
	})
	c.until("the schedule gone from `temporal schedule list`", 60*time.Second, func() (bool, string) {
		out, err := c.temporalCLI("schedule", "list")
		return err == nil && !strings.Contains(out, id), out
	})
	st = c.waitFor("web without a floor", 30*time.Second, func(st workflows.Status) bool { return st.Services[0].Floor == 0 })
	assert.Equal(t, 3, st.Services[0].Desired, "what the floor raised stays until idle reports shrink it")
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-schedules.json")
	}
}
