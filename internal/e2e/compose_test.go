package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/workflows"
)

// compose runs docker-compose (the standalone tool; `docker compose`, the
// plugin, reads the same files) on file in the repository root.
func compose(env []string, file string, args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-f", file}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestComposeFilesAreValid checks both compose files with `docker-compose
// config`. docker-compose.yml uses the official Temporal and PostgreSQL
// images, which cannot be pulled here, so this is all that runs of it.
func TestComposeFilesAreValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file     string
		services []string
		want     []string // in its configuration: the images, the loopback ports, the network, the key ring, the metrics
	}{
		{"docker-compose.yml", []string{"keys", "msm", "postgresql", "temporal", "temporal-ui", "prometheus", "grafana"},
			[]string{"image: msm:dev", "image: postgres:16", "image: temporalio/auto-setup:1.29.1", "image: temporalio/ui:2.42.1",
				"image: prom/prometheus:v3.5.0", "image: grafana/grafana:12.1.0",
				"- 127.0.0.1:7233:7233/tcp", "- 127.0.0.1:8080:8080/tcp", "- 127.0.0.1:9090:9090/tcp", "- 127.0.0.1:3000:3000/tcp",
				"name: msm-local", "MSM_KEY_FILE: /keys/ring",
				// Prometheus scrapes msm:9464 (deploy/prometheus/prometheus.yml) on the network only.
				"MSM_METRICS_ADDR: :9464", "/deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
				"/deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
				"/deploy/grafana/msm.json:/var/lib/grafana/dashboards/msm.json:ro", `GF_AUTH_ANONYMOUS_ENABLED: "true"`}},
		{"docker-compose.local.yml", []string{"keys", "msm", "temporal"},
			[]string{"image: msm:dev", "image: msm-temporal:dev",
				"- 127.0.0.1:7233:7233/tcp", "- 127.0.0.1:8233:8233/tcp", "name: msm-local", "MSM_KEY_FILE: /keys/ring"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := compose(nil, tc.file, "config")
			require.NoError(t, err, out)
			for _, want := range tc.want {
				assert.Contains(t, out, want)
			}
			assert.NotContains(t, out, "0.0.0.0:", "nothing is published on every address by default")
			assert.NotContains(t, out, ":9464/tcp", "msm's metrics are for Prometheus on the network, not published")
			out, err = compose(nil, tc.file, "config", "--services")
			require.NoError(t, err, out)
			got := strings.Fields(out)
			assert.ElementsMatch(t, tc.services, got)
		})
	}
}

// freeTCPPort returns a port free on every address of this machine.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestLocalComposeProvisionsTheExampleCatalog runs docker-compose.local.yml
// (the Temporal dev server and the msm worker, from locally built images)
// with the example docker catalog, and checks the catalog comes up as
// Docker containers that serve.
func TestLocalComposeProvisionsTheExampleCatalog(t *testing.T) {
	t.Parallel()
	buildImage(t)
	temporalImage, err := testimage.BuildTemporal()
	require.NoError(t, err)
	port, ui := freeTCPPort(t), freeTCPPort(t)
	c := clusterOn(t, fmt.Sprintf("compose%d", rand.IntN(1e6)), fmt.Sprintf("127.0.0.1:%d", port), "")
	c.catalogYAML(spec{}) // picks the port block
	// Its agents dial Temporal on the Manager's network, as the example says.
	c.dockerCatalog(fmt.Sprintf("temporal: host.docker.internal:%d", port), "temporal: temporal:7233")
	env := []string{
		"MSM_IMAGE=" + image, "MSM_TEMPORAL_IMAGE=" + temporalImage, "MSM_MANAGER=" + c.manager,
		fmt.Sprintf("MSM_TEMPORAL_PORT=%d", port), fmt.Sprintf("MSM_UI_PORT=%d", ui),
		"MSM_CATALOG_FILE=" + c.catalog, "COMPOSE_PROJECT_NAME=" + c.manager,
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose(env, "docker-compose.local.yml", "logs", "--no-color", "--tail", "60")
			t.Logf("compose logs (tail):\n%s", tailOf([]byte(out), 4000))
		}
		// The worker first, so that it starts nothing more; then what it
		// started, which holds the network; then the rest, the network too.
		_, _ = compose(env, "docker-compose.local.yml", "stop", "--timeout", "5", "msm")
		clustertest.DockerClean(c.manager)
		_, _ = compose(env, "docker-compose.local.yml", "down", "-v", "--timeout", "5")
	})
	out, err := compose(env, "docker-compose.local.yml", "up", "-d")
	require.NoError(t, err, out)

	// The frontend and the UI are published on loopback only.
	for _, p := range [][2]string{{"7233", fmt.Sprint(port)}, {"8233", fmt.Sprint(ui)}} {
		out, err := compose(env, "docker-compose.local.yml", "port", "temporal", p[0])
		require.NoError(t, err, out)
		assert.Equal(t, "127.0.0.1:"+p[1], strings.TrimSpace(out))
	}
	// msm status dials the frontend on loopback.
	var st workflows.Status
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := c.msm("status", "-o", "json")
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && converged(1)(st) && len(c.dockerMatches(st)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example catalog did not come up through docker-compose.local.yml: %v; last status %+v; engine: %v", err, st, c.dockerMatches(st))
		}
		time.Sleep(500 * time.Millisecond)
	}
	assert.Equal(t, "docker", st.Kind)
	// Two workers (scale: 2), each serving the Manager's task queue.
	out, err = compose(env, "docker-compose.local.yml", "ps", "-q", "msm")
	require.NoError(t, err, out)
	assert.Len(t, strings.Fields(out), 2, "two msm workers run: %s", out)
	assert.Equal(t, workflows.ReportsAuthenticated, st.Reports, "the keys service made a ring, and the worker uses it")
	assert.Zero(t, st.Rejected, "every node and agent report was signed with its key")
	assert.Len(t, loadedOf(st, "web"), 2)
	assert.Len(t, loadedOf(st, "api"), 1)
	c.assertServing(st)
	code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", ui))
	require.NoError(t, err, "the Web UI answers on its published port")
	assert.Equal(t, 200, code)
}
