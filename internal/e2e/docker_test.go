package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/clustertest"
	procfs "github.com/msm-project/msm/internal/proc"
	dockerkind "github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// dockerCtr is a Docker container of the Manager, as `docker ps` shows it.
type dockerCtr struct {
	name, state, role, container string
	port                         int
}

// dockerOwned lists every container (running or not) with the Manager's
// owner label.
func (c *cluster) dockerOwned() []dockerCtr {
	c.t.Helper()
	out, err := docker("ps", "-a", "--filter", "label="+dockerkind.LabelOwner+"="+c.manager, "--format",
		`{{.Names}} {{.State}} {{.Label "`+dockerkind.LabelRole+`"}} {{.Label "`+dockerkind.LabelContainer+`"}} {{.Label "`+dockerkind.LabelPort+`"}}`)
	require.NoError(c.t, err, out)
	var list []dockerCtr
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		d := dockerCtr{name: f[0], state: f[1], role: f[2]}
		if len(f) == 5 {
			d.container = f[3]
			d.port, _ = strconv.Atoi(f[4])
		}
		list = append(list, d)
	}
	return list
}

// dockerMatches reports how the engine's containers differ from the
// inventory in st: every container the Manager holds is a running Docker
// container with its port, no other one of the Manager's is there, ports
// are unique, and the node container runs.
func (c *cluster) dockerMatches(st workflows.Status) []string {
	var bad []string
	have := map[string]dockerCtr{}
	nodes := 0
	for _, d := range c.dockerOwned() {
		if d.role == dockerkind.RoleNode {
			if d.state == "running" {
				nodes++
			}
			continue
		}
		have[d.container] = d
	}
	if nodes != len(st.Servers) {
		bad = append(bad, fmt.Sprintf("%d node containers run for %d servers", nodes, len(st.Servers)))
	}
	ports := map[int]string{}
	for _, ct := range st.Containers {
		if ct.State == "failed" {
			continue // kept for status; its Docker container is gone
		}
		d, ok := have[ct.ID]
		switch {
		case !ok:
			bad = append(bad, ct.ID+" has no Docker container")
		case d.state != "running":
			bad = append(bad, fmt.Sprintf("%s is %s", d.name, d.state))
		case d.port != ct.Port:
			bad = append(bad, fmt.Sprintf("%s publishes %d, leased %d", d.name, d.port, ct.Port))
		}
		if other, dup := ports[ct.Port]; dup {
			bad = append(bad, fmt.Sprintf("port %d leased to %s and %s", ct.Port, other, ct.ID))
		}
		ports[ct.Port] = ct.ID
		delete(have, ct.ID)
	}
	for id, d := range have {
		bad = append(bad, fmt.Sprintf("%s (%s, %s) is not in the inventory", d.name, id, d.state))
	}
	slices.Sort(bad)
	return bad
}

// requireDockerMatches waits up to timeout for dockerMatches to hold with
// every service at desired and the warm pool full.
func (c *cluster) requireDockerMatches(warm int, timeout time.Duration) workflows.Status {
	c.t.Helper()
	var bad []string
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.status()
		if err == nil && converged(warm)(st) {
			if bad = c.dockerMatches(st); len(bad) == 0 {
				c.assertServing(st)
				return st
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the engine does not match the inventory after %s: %v (logs in %s)", timeout, bad, c.dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dockerGateway is the address of this machine on Docker's default bridge,
// which containers reach as host.docker.internal.
func dockerGateway(t *testing.T) string {
	t.Helper()
	ip, err := clustertest.BridgeIP()
	require.NoError(t, err, "the docker kind tests need Docker's default bridge")
	return ip
}

// dockerCatalog writes examples/docker/catalog.yaml for this cluster: the
// tests' image, the dev server through a proxy on the default bridge, and
// the cluster's port block.
func (c *cluster) dockerCatalog(edits ...string) {
	c.t.Helper()
	b, err := os.ReadFile("../../examples/docker/catalog.yaml")
	require.NoError(c.t, err)
	yaml := string(b)
	c.ranges = map[string][2]int{"local": {c.base, c.base + 19}}
	_, port, err := net.SplitHostPort(c.frontend)
	require.NoError(c.t, err)
	edits = append([]string{
		"image: msm:dev", "image: " + image,
		"temporal: temporal:7233", "temporal: host.docker.internal:" + port,
		"ports: 21200-21299", fmt.Sprintf("ports: %d-%d", c.base, c.base+19),
	}, edits...)
	for i := 0; i < len(edits); i += 2 {
		require.Contains(c.t, yaml, edits[i], "examples/docker/catalog.yaml changed")
		yaml = strings.ReplaceAll(yaml, edits[i], edits[i+1])
	}
	require.NoError(c.t, os.WriteFile(c.catalog, []byte(yaml), 0o644))
}

// loadedOf returns the loaded containers of service in st.
func loadedOf(st workflows.Status, service string) []workflows.ContainerStatus {
	var out []workflows.ContainerStatus
	for _, ct := range st.Containers {
		if ct.State == "loaded" && ct.Service == service {
			out = append(out, ct)
		}
	}
	return out
}

// TestDockerKindRunsTheExampleCatalog runs the example catalog on the
// docker kind, on this machine's engine: the worker starts the engine's
// node container, which runs every container as a Docker container of the
// msm image with its port published. Overload extends; a killed container
// and one cut from the network are recovered (the cut one removed, so it
// is fenced when the network comes back); shrinking removes containers;
// scaled to nothing, the server is released, and nothing with the
// Manager's owner label is left on the engine.
func TestDockerKindRunsTheExampleCatalog(t *testing.T) {
	t.Parallel()
	c := newCluster(t, spec{})
	buildImage(t)
	c.frontend = proxy(t, dockerGateway(t), c.srv.Address())
	c.dockerCatalog()
	network := "msm-" + c.manager
	t.Cleanup(func() { clustertest.DockerClean(c.manager) })
	// Payloads encrypted: the node container gets the keys from the worker,
	// each agent container from its node.
	c.codecOn()

	c.start("worker", "worker", "--catalog", c.catalog)
	st := c.requireDockerMatches(1, 2*time.Minute)
	c.assertSealed("LOG_LEVEL")
	assert.Len(t, loadedOf(st, "web"), 2)
	assert.Len(t, loadedOf(st, "api"), 1)
	require.Len(t, st.Servers, 1)
	assert.Equal(t, "local", st.Servers[0].ID)
	// Each MicroService runs as its container's own user, with no
	// capability and no way to gain one, in a container whose agent kept
	// only what starting it as that user takes (node.AgentCapabilities).
	for _, ct := range loadedOf(st, "web") {
		pids := procfs.UserProcesses(agentapi.ServiceUID(c.manager, ct.ID))
		require.Len(t, pids, 1, "web's MicroService of container %s, and nothing else, runs as its user", ct.ID)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[0]))
		require.NoError(t, err)
		assert.Contains(t, string(status), "CapEff:\t0000000000000000")
		assert.Contains(t, string(status), "CapBnd:\t00000000000000e0", "its bounding set is its agent's three")
		assert.Contains(t, string(status), "NoNewPrivs:\t1")
	}

	// Overload: CPU load on one web instance for the catalog's window
	// makes its agent report it, and the Manager extends web by one.
	ctx, stopLoad := context.WithCancel(context.Background())
	wait := drive(ctx, loadedOf(st, "web")[0].Port, 3, "/work?ms=100")
	c.waitFor("web extended on overload", 90*time.Second, func(st workflows.Status) bool {
		return st.Services[0].Desired >= 3 && st.Services[0].Ready >= 3
	})
	stopLoad()
	wait()
	st = c.requireDockerMatches(1, time.Minute)
	assert.Contains(t, eventsOf(st), "overload")

	// docker kill: the die event is reported, the instance replaced and
	// the dead container removed.
	victim := loadedOf(st, "web")[0]
	start := time.Now()
	out, err := docker("kill", dockerkind.ContainerName(victim.ID))
	require.NoError(t, err, out)
	c.waitFor("the killed container replaced", time.Minute, func(st workflows.Status) bool {
		return stateOf(st, victim.ID) == "failed" && converged(1)(st)
	})
	figure(t, "docker kind: docker kill of a container → back at desired", time.Since(start))
	c.requireDockerMatches(1, time.Minute)

	// docker network disconnect: the container can neither serve nor
	// reach Temporal; it is replaced and removed, so when the network
	// would take it back there is nothing stale to serve.
	st, err = c.status()
	require.NoError(t, err)
	cut := loadedOf(st, "web")[0]
	start = time.Now()
	out, err = docker("network", "disconnect", network, dockerkind.ContainerName(cut.ID))
	require.NoError(t, err, out)
	c.waitFor("the cut-off container replaced", time.Minute, func(st workflows.Status) bool {
		return stateOf(st, cut.ID) == "failed" && converged(1)(st)
	})
	figure(t, "docker kind: network disconnect → back at desired", time.Since(start))
	out, err = docker("network", "connect", network, dockerkind.ContainerName(cut.ID))
	assert.Error(t, err, "the stale container is fenced (removed), so it cannot rejoin: %s", out)
	assert.False(t, slices.ContainsFunc(c.dockerOwned(), func(d dockerCtr) bool { return d.container == cut.ID }), "the stale container is gone")
	c.requireDockerMatches(1, time.Minute)

	// Shrink: containers are removed from the engine.
	_, err = c.msm("scale", "web", "1")
	require.NoError(t, err)
	c.waitFor("web scaled to 1", time.Minute, func(st workflows.Status) bool {
		return st.Services[0].Desired == 1 && converged(1)(st)
	})
	st = c.requireDockerMatches(1, time.Minute)
	assert.Len(t, loadedOf(st, "web"), 1)

	// Down to nothing (a catalog without a warm pool, both services
	// scaled to 0, the server drained of its waiting container): the
	// empty server is released, its node container removed, and the
	// Manager's network with it.
	c.dockerCatalog("warm_pool: 1", "warm_pool: 0", "min: 1", "min: 0")
	for _, svc := range []string{"web", "api"} {
		// Refused (below min) until the new catalog is in force.
		require.Eventually(t, func() bool { _, err := c.msm("scale", svc, "0"); return err == nil }, time.Minute, 200*time.Millisecond)
		c.waitFor(svc+" at 0", time.Minute, func(st workflows.Status) bool { return st.Operations == 0 && len(loadedOf(st, svc)) == 0 })
	}
	_, err = c.msm("drain", "local")
	require.NoError(t, err)
	c.waitFor("no container and no server", 2*time.Minute, func(st workflows.Status) bool {
		return len(st.Containers) == count(st, "failed") && len(st.Servers) == 0 && st.Operations == 0
	})
	require.Eventually(t, func() bool { return len(c.dockerOwned()) == 0 }, 30*time.Second, 200*time.Millisecond,
		"containers with the owner label left: %v", c.dockerOwned())
	nets, err := docker("network", "ls", "-q", "--filter", "label="+dockerkind.LabelOwner+"="+c.manager)
	require.NoError(t, err)
	assert.Empty(t, nets, "networks with the owner label left")
}
