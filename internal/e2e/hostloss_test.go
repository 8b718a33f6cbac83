package e2e

import (
	"fmt"
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

// onServer counts the live (not failed) containers of a service on server.
func onServer(st workflows.Status, server, service string) int {
	n := 0
	for _, ct := range st.Containers {
		if ct.Server == server && ct.Service == service && ct.State != "failed" {
			n++
		}
	}
	return n
}

func serverState(st workflows.Status, server string) string {
	for _, s := range st.Servers {
		if s.ID == server {
			return s.State
		}
	}
	return ""
}

func eventsOf(st workflows.Status) string {
	var b strings.Builder
	for _, e := range st.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// assertServing checks every loaded container answers on its host's
// address as the service the inventory says.
func (c *cluster) assertServing(st workflows.Status) {
	c.t.Helper()
	for _, ct := range st.Containers {
		if ct.State != "loaded" {
			continue
		}
		addr := ""
		for _, s := range st.Servers {
			if s.ID == ct.Server {
				addr = s.Address
			}
		}
		code, body, err := get(fmt.Sprintf("http://%s:%d/", addr, ct.Port))
		require.NoError(c.t, err, "%s (%s) on %s:%d", ct.ID, ct.Service, addr, ct.Port)
		assert.Equal(c.t, 200, code)
		assert.Contains(c.t, string(body), `"service":"`+ct.Service+`"`)
	}
}

// threeHosts brings up s1..s3 as separate hosts with web ×3 and api ×2
// spread over them, and returns the converged status.
func threeHosts(t *testing.T, liveness string) *cluster {
	c := newCluster(t, spec{hosts: true, servers: 3, slots: 4, liveness: liveness,
		services: map[string]int{"web": 3, "api": 2}, order: []string{"web", "api"}})
	for _, s := range []string{"s1", "s2", "s3"} {
		c.startHost(s)
	}
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web ×3 and api ×2 healthy", 90*time.Second, converged(0))
	return c
}

// TestServerLossIsRecoveredOnTheOthers: one of three separate hosts is
// killed with all its processes; with the default liveness window (5s) its
// instances come back on the other two.
func TestServerLossIsRecoveredOnTheOthers(t *testing.T) {
	c := threeHosts(t, "")
	before := c.requireInvariants(30 * time.Second)
	c.assertServing(before)
	lost := 0
	for _, ct := range before.Containers {
		if ct.Server == "s2" {
			lost++
		}
	}
	require.Positive(t, lost, "spread placement puts instances on s2")

	began := time.Now()
	c.killHost("s2")
	st := c.waitFor("s2 lost and every service back at desired on s1 and s3", 60*time.Second, func(st workflows.Status) bool {
		return serverState(st, "s2") == "lost" && converged(0)(st) &&
			onServer(st, "s1", "web")+onServer(st, "s3", "web") == 3 && onServer(st, "s1", "api")+onServer(st, "s3", "api") == 2
	})
	figure(t, "server loss → back at desired (liveness window 5s)", time.Since(began))
	assert.Contains(t, eventsOf(st), "server s2 lost: its node agent was unheard for 5s")
	for _, ct := range st.Containers {
		if ct.Server == "s2" {
			assert.Equal(t, "failed", ct.State, "%s: nothing on s2 counts", ct.ID)
		}
	}
	c.assertServing(st)
	st = c.requireInvariants(30 * time.Second)
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'recover'", c.manager))
}

// TestPartitionIsRecoveredAndFencedWhenHealed: one host is cut off the
// network for longer than the window (2s here): its instances are recovered
// on the others while it is away, its stale containers still running
// behind the partition; once healed, they are fenced and the invariants hold.
func TestPartitionIsRecoveredAndFencedWhenHealed(t *testing.T) {
	c := threeHosts(t, "2s")
	before := c.requireInvariants(30 * time.Second)
	var stale []string
	for _, ct := range before.Containers {
		if ct.Server == "s2" {
			stale = append(stale, ct.ID)
		}
	}
	require.NotEmpty(t, stale)

	began := time.Now()
	c.partition("s2")
	st := c.waitFor("s2 lost and every service back at desired on s1 and s3", 60*time.Second, func(st workflows.Status) bool {
		return serverState(st, "s2") == "lost" && converged(0)(st) &&
			onServer(st, "s1", "web")+onServer(st, "s3", "web") == 3 && onServer(st, "s1", "api")+onServer(st, "s3", "api") == 2
	})
	figure(t, "partition → back at desired (liveness window 2s)", time.Since(began))
	c.assertServing(st)
	// Behind the partition the stale containers still run: only the fence
	// may end them, and the invariants cannot hold yet.
	running := map[string]bool{}
	for _, p := range c.hostProcs() {
		if p.server == "s2" {
			running[p.container] = true
		}
	}
	for _, id := range stale {
		assert.True(t, running[id], "%s still runs behind the partition", id)
	}
	assert.NotEmpty(t, c.invariants(st), "stale containers on s2 break the invariants until fenced")

	time.Sleep(3 * time.Second) // longer than the window, well past detection
	healed := time.Now()
	c.heal("s2")
	st = c.waitFor("s2 back and fenced", 90*time.Second, func(st workflows.Status) bool {
		return serverState(st, "s2") == "ready" && strings.Contains(eventsOf(st), "server s2 is back")
	})
	figure(t, "heal → stale containers fenced", time.Since(healed))
	assert.Contains(t, eventsOf(st), fmt.Sprintf("server s2 is back: its node stopped %d stale container(s)", len(stale)))
	st = c.requireInvariants(30 * time.Second)
	for _, p := range c.hostProcs() {
		assert.NotContains(t, stale, p.container, "stale container %s was fenced", p.container)
	}
	c.assertServing(st)
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-partition.json")
		c.saveOperation("recover", "../../workflows/testdata/recover-lost-server.json")
	}
}

// TestLostServerIsForgotten (issue 16, acceptance 2): s1's node and every
// container process on it are killed and never come back; s1 is lost after
// the liveness window, its instances recovered on s2, and after
// forget_after it is forgotten: gone from `msm status`, its containers and
// their ports released.
func TestLostServerIsForgotten(t *testing.T) {
	c := newCluster(t, spec{servers: 2, slots: 4, services: map[string]int{"web": 2}, order: []string{"web"},
		liveness: "2s", forgetAfter: "6s"})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web on s1", 60*time.Second, converged(0))
	// The machine goes: its node, its agents, its MicroServices.
	c.kill9("s1")
	for _, p := range c.hostProcs() {
		if p.server == "s1" {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	began := time.Now()
	lost := c.waitFor("s1 lost, web recovered on s2", 60*time.Second, func(st workflows.Status) bool {
		return st.Services[0].Ready == 2 && slices.ContainsFunc(st.Servers, func(s workflows.ServerStatus) bool { return s.ID == "s1" && s.State == "lost" })
	})
	held := 0
	for _, ct := range lost.Containers {
		if ct.Server == "s1" && ct.Port != 0 {
			held++
		}
	}
	assert.Equal(t, 2, held, "lost, its containers keep their ports: it may be behind a partition")
	st := c.waitFor("s1 forgotten", 60*time.Second, func(st workflows.Status) bool {
		return !slices.ContainsFunc(st.Servers, func(s workflows.ServerStatus) bool { return s.ID == "s1" })
	})
	figure(t, "server lost → forgotten (liveness 2s, forget_after 6s)", time.Since(began))
	for _, ct := range st.Containers {
		assert.NotEqual(t, "s1", ct.Server, "nothing of s1 is kept: %+v", ct)
	}
	for _, p := range st.Ports {
		assert.NotEqual(t, "s1", p.Server)
	}
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, strings.Join(events, "\n"), "server s1 forgotten: lost since")
	assert.Equal(t, 2, st.Services[0].Ready)
	out, err := c.msm("status")
	require.NoError(t, err)
	assert.NotContains(t, out, "s1 ", "msm status no longer lists s1:\n%s", out)
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-forget.json")
	}
}
