package node

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/startbatch"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/workflows"
)

// localRegistry serves an in-memory registry (Docker's distribution API) on
// this machine's loopback, which the engine pulls from without TLS
// (127.0.0.0/8 is an insecure registry by default), and counts the
// manifest requests (HEAD or GET) it answers.
func localRegistry(t *testing.T) (host string, manifests *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	manifests = &atomic.Int64{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			manifests.Add(1)
		}
		reg.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), manifests
}

// TestDockerStartContainerPullsAMissingImage: an image the engine does not
// hold is pulled from its registry (a registry running here, holding the
// demo's own image pushed to it) and its container runs; three containers
// of it started at once in one batch share one pull.
func TestDockerStartContainerPullsAMissingImage(t *testing.T) {
	n, eng := dockerNode(t)
	demo, err := testimage.BuildDemo()
	require.NoError(t, err)
	host, manifests := localRegistry(t)
	ref := host + "/msm-node-pull-test:1"
	untag := func() {
		_, _ = exec.Command("docker", "rmi", ref).CombinedOutput()
	}
	t.Cleanup(untag)
	for _, args := range [][]string{{"tag", demo, ref}, {"push", ref}, {"rmi", ref}} {
		out, err := exec.Command("docker", args...).CombinedOutput()
		require.NoError(t, err, "docker %s: %s", args[0], out)
	}
	pushed := manifests.Load()

	in := workflows.StartContainerInput{Manager: "m1", Container: "m1-c1", Server: dockerServer, Port: freePort(t), Image: ref, Service: "app"}
	_, err = runActivity[workflows.StartContainerResult](t, n.StartContainer, in)
	require.NoError(t, err)
	onePull := manifests.Load() - pushed
	require.Positive(t, onePull, "the engine pulled from the registry")
	out, err := exec.Command("docker", "inspect", "--format", "{{.Config.Image}} {{.State.Status}}", "msm-m1-c1").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, ref+" running", strings.TrimSpace(string(out)))

	// Gone again: one start pulls it (what one pull asks of the registry,
	// now that the engine knows the image's layers), then three at once
	// pull it once.
	pullAgain := func(ids ...string) int64 {
		t.Helper()
		for _, id := range ids {
			require.NoError(t, n.StopContainer(context.Background(), workflows.StopContainerInput{Container: id}))
		}
		untag()
		return manifests.Load()
	}
	before := pullAgain("m1-c1")
	in.Container, in.Port = "m1-c2", freePort(t)
	_, err = runActivity[workflows.StartContainerResult](t, n.StartContainer, in)
	require.NoError(t, err)
	one := manifests.Load() - before
	require.Positive(t, one, "the engine asked the registry again")
	before = pullAgain("m1-c2")
	batch := workflows.StartContainersInput{Manager: "m1", Server: dockerServer}
	for i := 3; i <= 5; i++ {
		batch.Containers = append(batch.Containers, workflows.StartContainer{Container: fmt.Sprintf("m1-c%d", i), Port: freePort(t), Image: ref, Service: "app"})
	}
	res, err := runActivity[workflows.StartContainersResult](t, func(ctx context.Context, in workflows.StartContainersInput) (workflows.StartContainersResult, error) {
		return startbatch.Each(ctx, in, n.StartContainer), nil
	}, batch)
	require.NoError(t, err)
	for _, o := range res.Started {
		assert.Empty(t, o.Error, o.Container)
		assert.Positive(t, o.PID, o.Container)
	}
	assert.Equal(t, one, manifests.Load()-before, "one pull for the three")
	assert.Equal(t, map[string]string{"msm-m1-c3": "running", "msm-m1-c4": "running", "msm-m1-c5": "running"}, ours(t, eng))
}
