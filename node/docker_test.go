package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// These tests run against this machine's Docker Engine, with the image of
// `make image`. Their containers belong to manager m1 on server dockertest
// and are removed before and after each test.

const dockerServer = "dockertest"

func dockerNode(t *testing.T) (*Docker, *client.Client) {
	t.Helper()
	img, err := testimage.Build()
	require.NoError(t, err)
	eng, err := docker.Dial("", catalog.EngineTLS{})
	require.NoError(t, err)
	net := "msm-node-test"
	clean := func() {
		ctx := context.Background()
		left, _ := docker.Owned(ctx, eng, map[string]string{docker.LabelOwner: "m1", docker.LabelServer: dockerServer})
		for _, c := range left {
			_ = docker.Remove(ctx, eng, c.ID)
		}
		_ = docker.RemoveNetworkIfUnused(ctx, eng, net, "m1")
	}
	clean()
	t.Cleanup(clean)
	require.NoError(t, docker.EnsureNetwork(context.Background(), eng, net, "m1"))
	n, err := NewDocker(DockerConfig{
		Server: dockerServer, Manager: "m1", Engine: eng, Image: img, Network: net,
		// The image's lean agent: a container that starts proves the image holds it.
		AgentCommand: []string{"/usr/local/bin/" + LeanAgent},
		// Unreachable: the agents wait for Temporal, and keep running.
		AgentEnv: []string{"TEMPORAL_ADDRESS=host.docker.internal:1"},
		Log:      slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	return n, eng
}

// startIn runs StartContainer as an activity.
func startIn(t *testing.T, n *Docker, id string, port int) (workflows.StartContainerResult, error) {
	t.Helper()
	return runActivity[workflows.StartContainerResult](t, n.StartContainer, workflows.StartContainerInput{
		Manager: "m1", Container: id, Server: dockerServer, Port: port,
	})
}

// ours lists the Docker containers of server dockertest: name → state.
func ours(t *testing.T, eng *client.Client) map[string]string {
	t.Helper()
	list, err := docker.Owned(context.Background(), eng, map[string]string{docker.LabelOwner: "m1", docker.LabelServer: dockerServer})
	require.NoError(t, err)
	out := map[string]string{}
	for _, c := range list {
		out[strings.TrimPrefix(c.Names[0], "/")] = string(c.State)
	}
	return out
}

func TestDockerStartContainerIsIdempotent(t *testing.T) {
	n, eng := dockerNode(t)
	port := freePort(t)
	first, err := startIn(t, n, "m1-c1", port)
	require.NoError(t, err)
	assert.Positive(t, first.PID)
	assert.False(t, first.Attached)

	again, err := startIn(t, n, "m1-c1", port)
	require.NoError(t, err)
	assert.Equal(t, workflows.StartContainerResult{PID: first.PID, Attached: true}, again)
	// A node made afresh (its container restarted) finds it by name.
	n2, err := NewDocker(n.cfg)
	require.NoError(t, err)
	again, err = startIn(t, n2, "m1-c1", port)
	require.NoError(t, err)
	assert.True(t, again.Attached)
	assert.Equal(t, map[string]string{"msm-m1-c1": "running"}, ours(t, eng), "one container for one key")

	got, err := eng.ContainerInspect(context.Background(), "msm-m1-c1", client.ContainerInspectOptions{})
	require.NoError(t, err)
	var published []string
	for p, bs := range got.Container.HostConfig.PortBindings {
		for _, b := range bs {
			published = append(published, p.String()+"->"+b.HostPort)
		}
	}
	assert.Equal(t, []string{strconv.Itoa(port) + "/tcp->" + strconv.Itoa(port)}, published, "the leased port is published on the host")
	assert.Equal(t, []string{"/usr/local/bin/msm-agent"}, []string(got.Container.Config.Entrypoint))
	assert.Equal(t, []string{"--container", "m1-c1", "--server", dockerServer, "--manager", "m1"}, got.Container.Config.Cmd)
	hc := got.Container.HostConfig
	assert.Equal(t, []string{"ALL"}, hc.CapDrop)
	assert.Equal(t, AgentCapabilities, hc.CapAdd)
	assert.Equal(t, []string{"no-new-privileges:true"}, hc.SecurityOpt)
	assert.False(t, hc.Privileged)
	// What the kernel holds the agent to, read off its process.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", first.PID))
	require.NoError(t, err)
	assert.Contains(t, string(status), "NoNewPrivs:\t1")
	assert.Contains(t, string(status), "CapEff:\t00000000000000e0", "SETGID, SETUID, KILL: bits 6, 7, 5")

	// Its counts (msm node --docker --metrics-addr): one start, the
	// second found it running; the engine runs one of its containers.
	assert.Equal(t, Stats{Containers: 1, Started: 1}, n.Stats())

	require.NoError(t, n.StopContainer(context.Background(), workflows.StopContainerInput{Container: "m1-c1"}))
	assert.Empty(t, ours(t, eng))
	require.NoError(t, n.StopContainer(context.Background(), workflows.StopContainerInput{Container: "m1-c1"}), "gone counts as stopped")
	assert.Equal(t, Stats{Containers: 0, Started: 1, Stopped: 2}, n.Stats())

	// Another port for the same ID (an earlier Manager run's container):
	// the stale one goes and one container is left.
	_, err = startIn(t, n, "m1-c1", port)
	require.NoError(t, err)
	other := freePort(t)
	_, err = startIn(t, n, "m1-c1", other)
	require.NoError(t, err)
	got, err = eng.ContainerInspect(context.Background(), "msm-m1-c1", client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(other), got.Container.Config.Labels[docker.LabelPort])
	assert.Len(t, ours(t, eng), 1)
}

func TestDockerStartContainerPortInUse(t *testing.T) {
	n, eng := dockerNode(t)
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	_, err = startIn(t, n, "m1-c2", l.Addr().(*net.TCPAddr).Port)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	assert.Equal(t, workflows.ErrPortInUse, app.Type())
	assert.True(t, app.NonRetryable())
	assert.Empty(t, ours(t, eng), "nothing left behind")
}

func TestDockerDeathAndDisconnectAreReported(t *testing.T) {
	n, _ := dockerNode(t)
	for _, id := range []string{"m1-c1", "m1-c2", "m1-c3"} {
		_, err := startIn(t, n, id, freePort(t))
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sig := &signals{}
	go func() { defer close(done); n.watchEvents(ctx, sig) }()
	t.Cleanup(func() { cancel(); <-done })

	require.NoError(t, n.StopContainer(context.Background(), workflows.StopContainerInput{Container: "m1-c3"}))
	out, err := exec.Command("docker", "kill", "msm-m1-c1").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("docker", "network", "disconnect", n.cfg.Network, "msm-m1-c2").CombinedOutput()
	require.NoError(t, err, "%s", out)

	require.Eventually(t, func() bool { return len(sig.reports()) >= 2 }, 20*time.Second, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // room for a wrong third report
	reasons := map[string]string{}
	for _, r := range sig.reports() {
		_, dup := reasons[r.Container]
		assert.False(t, dup, "%s reported twice", r.Container)
		reasons[r.Container] = r.Reason
	}
	assert.Len(t, reasons, 2, "the stopped container is not reported: %v", reasons)
	assert.Contains(t, reasons["m1-c1"], "its Docker container died (exit code 137)")
	assert.Contains(t, reasons["m1-c2"], "disconnected from network "+n.cfg.Network)
}

func TestDockerReconcileRemovesWhatTheManagerDoesNotKeep(t *testing.T) {
	n, eng := dockerNode(t)
	for _, id := range []string{"m1-c1", "m1-c2", "m1-c3"} {
		_, err := startIn(t, n, id, freePort(t))
		require.NoError(t, err)
	}
	// c3 is newer than the Manager's snapshot (seq 2): it stays.
	res, err := runActivity[workflows.ReconcileResult](t, n.Reconcile, workflows.ReconcileInput{Manager: "m1", Server: dockerServer, Keep: []string{"m1-c1"}, Seq: 2})
	require.NoError(t, err)
	assert.Equal(t, workflows.ReconcileResult{Stopped: []string{"m1-c2"}, Running: []string{"m1-c1", "m1-c3"},
		Version: version.Get(), Wire: agentapi.Wire}, res, "what it stopped and what runs, and the node's version")
	assert.Equal(t, map[string]string{"msm-m1-c1": "running", "msm-m1-c3": "running"}, ours(t, eng))

	kept, err := n.Reattach(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"m1-c1", "m1-c3"}, kept)
}

// TestDockerStartContainerOfAServicesImage: a container of a service's own
// image (the demo alone, no msm in it) runs the Manager's agent, copied
// in and run as root, with the image's own command handed to it; its
// start is idempotent, and the container the agent was copied out of is
// gone. An image the engine cannot find or pull fails that start with the
// non-retryable ImageNotFound, saying what to do, and leaves nothing.
func TestDockerStartContainerOfAServicesImage(t *testing.T) {
	n, eng := dockerNode(t)
	img, err := testimage.BuildDemo()
	require.NoError(t, err)
	port := freePort(t)
	in := workflows.StartContainerInput{Manager: "m1", Container: "m1-c7", Server: dockerServer, Port: port, Image: img, Service: "app"}
	first, err := runActivity[workflows.StartContainerResult](t, n.StartContainer, in)
	require.NoError(t, err)
	require.Positive(t, first.PID)

	got, err := eng.ContainerInspect(context.Background(), "msm-m1-c7", client.ContainerInspectOptions{})
	require.NoError(t, err)
	cfg := got.Container.Config
	assert.Equal(t, img, cfg.Image)
	assert.Equal(t, []string{InjectedDir + "/" + LeanAgent}, []string(cfg.Entrypoint))
	assert.Equal(t, []string{"--container", "m1-c7", "--server", dockerServer, "--manager", "m1"}, cfg.Cmd)
	assert.Equal(t, "0:0", cfg.User)
	var ic agentapi.ImageCommand
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, agentapi.ImageEnv+"="); ok {
			require.NoError(t, json.Unmarshal([]byte(v), &ic))
		}
	}
	assert.Equal(t, []string{"/app/demo", "--listen=0.0.0.0"}, ic.Entrypoint, "the image's own command, for the agent")
	// The process the engine started is the copied agent, and it runs.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", first.PID))
	require.NoError(t, err)
	assert.Equal(t, InjectedDir+"/"+LeanAgent, strings.Split(string(cmdline), "\x00")[0])
	assert.Equal(t, container.StateRunning, got.Container.State.Status)

	again, err := runActivity[workflows.StartContainerResult](t, n.StartContainer, in)
	require.NoError(t, err)
	assert.Equal(t, workflows.StartContainerResult{PID: first.PID, Attached: true}, again)
	assert.Equal(t, map[string]string{"msm-m1-c7": "running"}, ours(t, eng), "one container, and no agent copy left")

	missing := in
	missing.Container, missing.Port, missing.Image = "m1-c8", freePort(t), "msm-e2e-missing:1"
	_, err = runActivity[workflows.StartContainerResult](t, n.StartContainer, missing)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	assert.Equal(t, workflows.ErrImageNotFound, app.Type())
	assert.True(t, app.NonRetryable())
	assert.Contains(t, app.Message(), `image "msm-e2e-missing:1" not found on server dockertest and not pulled (`)
	assert.Contains(t, app.Message(), "fix the image of service app in the catalog")
	assert.Equal(t, map[string]string{"msm-m1-c7": "running"}, ours(t, eng), "nothing left of the failed start")
	assert.Equal(t, int64(1), n.Stats().StartFailed)
}
