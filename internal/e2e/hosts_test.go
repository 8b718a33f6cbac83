package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/internal/tcpproxy"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/workflows"
)

// Separate hosts: each server of a spec.hosts cluster is a container of the
// msm image (built FROM scratch from static binaries, nothing pulled) on a
// private Docker network with its own address, running `msm node`. Killing
// the container kills the host with every process on it; disconnecting it
// from the network is a partition.

// image is the tag of the test image, built once per test binary.
var image = testimage.Tag

// buildImage builds the msm image for the hosts with `make image` (static
// msm and demo, FROM scratch).
func buildImage(t *testing.T) {
	t.Helper()
	_, err := testimage.Build()
	require.NoError(t, err, "the hosts tests need a running Docker Engine")
}

// docker runs the docker CLI and returns its combined output, trimmed.
var docker = clustertest.Docker

// dockerNet is a private network for one test's hosts.
type dockerNet struct {
	name    string
	prefix  string // "10.231.7."
	gateway string
	label   string
}

// hostsLabel marks every container and network these tests make.
const hostsLabel = "msm.e2e.manager"

// newDockerNet makes a network on a random /24 of 10.231.0.0/16 (another
// one if taken), removed with its hosts when the test ends.
func newDockerNet(t *testing.T, manager string) *dockerNet {
	t.Helper()
	buildImage(t)
	var last string
	for range 10 {
		n := &dockerNet{name: "msm-e2e-" + manager, prefix: fmt.Sprintf("10.231.%d.", 1+rand.IntN(250)), label: hostsLabel + "=" + manager}
		n.gateway = n.prefix + "1"
		out, err := docker("network", "create", "--label", n.label, "--subnet", n.prefix+"0/24", "--gateway", n.gateway, n.name)
		if err != nil {
			last = out
			continue
		}
		t.Cleanup(func() {
			if ids, _ := docker("ps", "-aq", "--filter", "label="+n.label); ids != "" {
				_, _ = docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
			}
			_, _ = docker("network", "rm", n.name)
		})
		return n
	}
	t.Fatalf("creating a Docker network: %s", last)
	return nil
}

// proxy forwards TCP connections from ip (a free port) to target until the
// test ends, and returns its address.
func proxy(t *testing.T, ip, target string) string {
	t.Helper()
	p, err := tcpproxy.Start(ip, target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p.Addr()
}

// ip is the address of host s<i>.
func (n *dockerNet) ip(i int) string { return n.prefix + strconv.Itoa(10+i) }

func (c *cluster) hostName(server string) string { return "msm-e2e-" + c.manager + "-" + server }

// startHost starts server (s<i>) as its own host running `msm node`.
func (c *cluster) startHost(server string) {
	c.t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(server, "s"))
	require.NoError(c.t, err)
	out, err := docker("run", "-d", "--name", c.hostName(server), "--hostname", server,
		"--label", c.net.label, "--network", c.net.name, "--ip", c.net.ip(i),
		"-e", "TEMPORAL_ADDRESS="+c.frontend, "-e", "MSM_MANAGER="+c.manager, "-e", "MSM_REPORT_EVERY="+c.h.ReportEvery,
		image, "node", "--server", server, "--state-dir", "/var/msm")
	require.NoError(c.t, err, out)
}

// killHost kills a host and everything on it.
func (c *cluster) killHost(server string) {
	c.t.Helper()
	out, err := docker("kill", c.hostName(server))
	require.NoError(c.t, err, out)
}

// partition cuts a host off the network; heal puts it back, same address.
func (c *cluster) partition(server string) {
	c.t.Helper()
	out, err := docker("network", "disconnect", "-f", c.net.name, c.hostName(server))
	require.NoError(c.t, err, out)
}

func (c *cluster) heal(server string) {
	c.t.Helper()
	i, _ := strconv.Atoi(strings.TrimPrefix(server, "s"))
	out, err := docker("network", "connect", "--ip", c.net.ip(i), c.net.name, c.hostName(server))
	require.NoError(c.t, err, out)
}

// netPID is a process in server's network namespace, 0 if none runs: the
// test's own for a server on this host.
func (c *cluster) netPID(server string) int {
	if c.net == nil {
		return os.Getpid()
	}
	out, err := docker("inspect", "-f", "{{.State.Pid}}", c.hostName(server))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(out)
	return pid
}

// listening returns the TCP ports listening in pid's network namespace.
func listening(pid int) []int {
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 4 || fs[3] != "0A" { // LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			port, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
			if err == nil && !slices.Contains(ports, int(port)) {
				ports = append(ports, int(port))
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// invariants checks what every fault test must leave true, and returns
// what does not hold (empty when all does):
//   - no two containers of a server share a port in the inventory, nor
//     among the sockets listening on the server;
//   - every catalog service is at its desired replicas, all healthy;
//   - every socket in a server's port range belongs to a loaded container
//     of that server on that port;
//   - every container process runs on the server the inventory puts its
//     container on, and every live container has its agent.
func (c *cluster) invariants(st workflows.Status) []string {
	var bad []string
	leased := map[string]string{}
	live := map[string]workflows.ContainerStatus{}
	for _, ct := range st.Containers {
		if ct.Port == 0 {
			continue // a destroyed failure, kept for status
		}
		key := ct.Server + ":" + strconv.Itoa(ct.Port)
		if other, ok := leased[key]; ok {
			bad = append(bad, fmt.Sprintf("port %s leased to both %s and %s", key, other, ct.ID))
		}
		leased[key] = ct.ID
		if ct.State != "failed" {
			live[ct.ID] = ct
		}
	}
	for _, s := range st.Services {
		if s.Ready != s.Desired {
			bad = append(bad, fmt.Sprintf("service %s: %d ready of %d desired", s.Name, s.Ready, s.Desired))
		}
	}
	for server, r := range c.ranges {
		pid := c.netPID(server)
		if pid == 0 {
			continue // the host is down: nothing listens there
		}
		for _, port := range listening(pid) {
			if port < r[0] || port > r[1] {
				continue
			}
			id, ok := leased[server+":"+strconv.Itoa(port)]
			if !ok || live[id].State != "loaded" {
				bad = append(bad, fmt.Sprintf("port %d listens on %s without a loaded container leasing it (lease: %q)", port, server, id))
			}
		}
	}
	agents := map[string]int{}
	for _, p := range c.hostProcs() {
		ct, ok := live[p.container]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("process %d of container %s on %s has no live container in the inventory", p.pid, p.container, p.server))
		case ct.Server != p.server:
			bad = append(bad, fmt.Sprintf("process %d of container %s runs on %s, the inventory says %s", p.pid, p.container, p.server, ct.Server))
		case p.agent:
			agents[p.container]++
		}
	}
	for id := range live {
		if agents[id] != 1 {
			bad = append(bad, fmt.Sprintf("container %s has %d agent processes", id, agents[id]))
		}
	}
	slices.Sort(bad)
	return bad
}

// requireInvariants waits (up to timeout, for destroys in flight) until
// the invariants hold, and fails the test with what does not.
func (c *cluster) requireInvariants(timeout time.Duration) workflows.Status {
	c.t.Helper()
	var (
		bad []string
		st  workflows.Status
		err error
	)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, err = c.status(); err != nil {
			bad = []string{err.Error()}
			continue
		}
		if bad = c.invariants(st); st.Operations == 0 && len(bad) == 0 {
			return st
		}
	}
	c.t.Fatalf("the invariants do not hold after %s (operations running: %d):\n  %s\nlogs in %s", timeout, st.Operations, strings.Join(bad, "\n  "), c.dir)
	return st
}

// figure prints a measured figure of a fault test: in the test log, and
// appended to $MSM_FIGURES, which `make test` shows at the end.
func figure(t *testing.T, name string, d time.Duration) {
	t.Helper()
	t.Logf("%s: %s", name, d.Round(time.Millisecond))
	if path := os.Getenv("MSM_FIGURES"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%-60s %s\n", t.Name()+": "+name, d.Round(time.Millisecond))
			f.Close()
		}
	}
}
