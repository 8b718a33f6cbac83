package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestTemporalAwayLongerThanTheLivenessWindow (issue 17, acceptance 3):
// the dev server is stopped for four liveness windows, then started again
// on the same address and state file. Every lease's timeout fires at once
// when it comes back, long past due: the Manager takes no server for lost,
// says why it waits, and each node, which held its lease and its
// containers through the outage, leases again. No container is stopped
// (the same processes run), none is recovered, and the services answer.
func TestTemporalAwayLongerThanTheLivenessWindow(t *testing.T) {
	const window = 2 * time.Second
	c := newCluster(t, spec{persistent: true, servers: 2, slots: 2, liveness: window.String(), warmPool: 1,
		services: map[string]int{"web": 2, "api": 1}, order: []string{"web", "api"}})
	for _, s := range []string{"s1", "s2"} {
		c.start(s, "node", "--server", s, "--state-dir", filepath.Join(c.dir, s))
	}
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web ×2, api ×1 and the warm pool up", 60*time.Second, converged(1))
	before := c.requireInvariants(30 * time.Second)
	c.assertServing(before)
	pids := map[int]string{}
	for _, p := range c.hostProcs() {
		pids[p.pid] = p.container
	}
	require.NotEmpty(t, pids)
	for _, s := range []string{"s1", "s2"} {
		require.Equal(t, "ready", serverState(before, s), "both servers in use (2 slots each)")
	}

	away := c.restartServerAfter(4 * window)
	back := time.Now()
	figure(t, "dev server away (stopped 4 × the 2s window, then started)", away)
	st := c.waitFor("both nodes leased again", 90*time.Second, func(st workflows.Status) bool {
		events := eventsOf(st)
		return strings.Contains(events, "server s1's node leased again after the outage") &&
			strings.Contains(events, "server s2's node leased again after the outage") &&
			!slices.ContainsFunc(st.Servers, func(s workflows.ServerStatus) bool { return s.UnheardUntil != nil })
	})
	figure(t, "dev server back → every node leased again", time.Since(back))
	events := eventsOf(st)
	t.Logf("events:\n%s", events)
	for _, s := range []string{"s1", "s2"} {
		assert.Contains(t, events, "server "+s+"'s lease timed out ")
		assert.Contains(t, events, "Temporal or this Manager was away, not its node; waiting up to 30s (manager.outage_grace) for its node to lease again before recovering anything")
	}
	assert.NotContains(t, events, " lost", "no server taken for lost")
	for _, s := range st.Servers {
		assert.Equal(t, "ready", s.State, s.ID)
	}

	st = c.requireInvariants(30 * time.Second)
	assert.Equal(t, before.Containers, st.Containers, "the same containers, none failed, none recovered")
	assert.Zero(t, count(st, "failed"))
	after := map[int]string{}
	for _, p := range c.hostProcs() {
		after[p.pid] = p.container
	}
	assert.Equal(t, pids, after, "every agent and MicroService runs on, the same processes")
	c.assertServing(st)
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-outage.json")
	}
}

// TestServerGoneDuringATemporalOutageIsLostAfterTheGrace: while the dev
// server is stopped, s2 goes for good (its node and every container
// process on it killed). When Temporal is back, both leases' timeouts are
// late: s1's node leases again with nothing stopped, s2's does not, and
// once manager.outage_grace (6s here) has passed s2 is lost and its
// instances recovered on s3, the events saying why it was waited for and
// why it is lost.
func TestServerGoneDuringATemporalOutageIsLostAfterTheGrace(t *testing.T) {
	const window = 2 * time.Second
	c := newCluster(t, spec{persistent: true, servers: 3, slots: 2, liveness: window.String(), outageGrace: "6s", warmPool: 1,
		services: map[string]int{"web": 2, "api": 1}, order: []string{"web", "api"}})
	for _, s := range []string{"s1", "s2", "s3"} {
		c.start(s, "node", "--server", s, "--state-dir", filepath.Join(c.dir, s))
	}
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web ×2, api ×1 and the warm pool up on s1 and s2", 60*time.Second, converged(1))
	require.Equal(t, "ready", serverState(before, "s1"))
	require.Equal(t, "ready", serverState(before, "s2"))
	onS1 := map[int]string{}
	for _, p := range c.hostProcs() {
		if p.server == "s1" {
			onS1[p.pid] = p.container
		}
	}
	require.NotEmpty(t, onS1)

	require.NoError(t, c.h.Server.Stop())
	c.kill9("s2")
	for _, p := range c.hostProcs() {
		if p.server == "s2" {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	time.Sleep(4 * window)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.h.StartServerAgain(ctx))
	back := time.Now()
	st := c.waitFor("s2 lost after the grace, every service back at desired", 90*time.Second, func(st workflows.Status) bool {
		return serverState(st, "s2") == "lost" && converged(1)(st)
	})
	figure(t, "dev server back → s2 lost (grace 6s) and recovered", time.Since(back))
	events := eventsOf(st)
	t.Logf("events:\n%s", events)
	assert.Contains(t, events, "server s2's lease timed out ")
	assert.Contains(t, events, "server s2 lost: its node did not lease again within 6s (manager.outage_grace) after Temporal or this Manager came back; recovering its")
	assert.Contains(t, events, "server s1's node leased again after the outage")
	assert.NotContains(t, events, "server s1 lost")
	assert.Equal(t, "ready", serverState(st, "s1"))
	for _, ct := range st.Containers {
		if ct.Server == "s2" {
			assert.Equal(t, "failed", ct.State, ct.ID)
		}
	}
	after := map[int]string{}
	for _, p := range c.hostProcs() {
		if p.server == "s1" {
			after[p.pid] = p.container
		}
	}
	assert.Equal(t, onS1, after, "s1's agents and MicroServices run on, the same processes")
	c.assertServing(st)
}
