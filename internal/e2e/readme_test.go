package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/workflows"
)

// TestReadmeTemporalRecipes runs the exact temporal CLI commands the README
// shows, against a real Manager, and checks what each prints.
func TestReadmeTemporalRecipes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var cmds []string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "bin/temporal ") {
			cmds = append(cmds, line)
		}
	}
	want := []struct {
		ok       bool
		contains []string
	}{
		{true, []string{`"services"`, `"web"`, `"api"`}},
		{true, []string{"back-off lifted for [web]"}},
		{false, []string{`unknown service \"nope\"`}},
		{true, []string{"extending web from 2 to 4 instance(s)"}},
		{true, []string{"scaling web from 4 to 1 instance(s)"}},
		{true, []string{"dry run: move web", "release s1"}},
		{true, []string{"/provision/1"}},
		{true, []string{"ActivityTaskCompleted", "WorkflowExecutionCompleted", `"loaded":`}},
	}
	require.Len(t, cmds, len(want), "README recipes: %q", cmds)

	c := newCluster(t, standard)
	// Payloads encrypted, as make dev runs, and the recipes read through
	// the codec server.
	keys := filepath.Join(c.dir, "keys", "codec")
	_, err = c.msm("keys", "new", keys)
	require.NoError(t, err)
	port, err := devserver.FreePort()
	require.NoError(t, err)
	codecAddr := fmt.Sprintf("127.0.0.1:%d", port)
	c.h.Env = append(c.h.Env, "MSM_CODEC_KEY_FILE="+keys)
	c.start("codec", "codec-server", "--listen", codecAddr)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("every service healthy", 60*time.Second, converged(1))
	// Visibility is eventually consistent: wait until the list can see the run.
	c.assertVisible("MsmManager = '" + c.manager + "' AND MsmOperation = 'provision'")

	for i, line := range cmds {
		line = strings.ReplaceAll(line, "msm/local", "msm/"+c.manager)
		line = strings.ReplaceAll(line, "'local'", "'"+c.manager+"'")
		line = strings.ReplaceAll(line, `"local-1"`, `"s1"`)
		line = bins.temporal + strings.TrimPrefix(line, "bin/temporal")
		cmd := exec.Command("sh", "-c", line)
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+c.srv.Address(), "TEMPORAL_CODEC_ENDPOINT=http://"+codecAddr)
		before := c.historyLength(workflows.ManagerID(c.manager))
		out, err := cmd.CombinedOutput()
		if !want[i].ok {
			assert.Equal(t, before, c.historyLength(workflows.ManagerID(c.manager)),
				"a rejected update leaves no event in the Manager's history")
		}
		if want[i].ok {
			assert.NoError(t, err, "%s\n%s", cmds[i], out)
		} else {
			assert.Error(t, err, "%s must fail\n%s", cmds[i], out)
		}
		for _, s := range want[i].contains {
			assert.Contains(t, string(out), s, cmds[i])
		}
	}
	// Without the codec server the same history is ciphertext.
	show := bins.temporal + strings.TrimPrefix(cmds[len(cmds)-1], "bin/temporal")
	show = strings.ReplaceAll(show, "msm/local", "msm/"+c.manager)
	raw := exec.Command("sh", "-c", show)
	raw.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+c.srv.Address(), "TEMPORAL_CODEC_ENDPOINT=")
	out, err := raw.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), `"loaded":`)
	assert.Contains(t, string(out), "ResultEncoding  binary/encrypted")
	// After extend 2 and scale 1, web runs one instance.
	st := c.waitFor("web scaled to 1 by the recipes", 60*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && st.Services[0].Desired == 1
	})
	assert.Equal(t, workflows.ServiceStatus{Name: "web", Desired: 1, Ready: 1}, st.Services[0])
	c.assertFleet(st, 3)
}

// historyLength counts the events of a workflow's current run.
func (c *cluster) historyLength(id string) int {
	c.t.Helper()
	iter := c.client.GetWorkflowHistory(context.Background(), id, "", false, 0)
	n := 0
	for iter.HasNext() {
		_, err := iter.Next()
		require.NoError(c.t, err)
		n++
	}
	return n
}
