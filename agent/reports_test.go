package agent_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/agent"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows/agentapi"
)

// TestLeaveSignsTheReportForItsNode: an agent whose node passes its
// reports on leaves each in its file, signed with its container's key,
// the last one in place of any its node has not taken yet.
func TestLeaveSignsTheReportForItsNode(t *testing.T) {
	root := trust.Key{ID: "k1", Secret: []byte(strings.Repeat("r", trust.KeySize))}
	key := trust.ContainerKey(trust.ServerKey(root, "m1", "s1"), "m1-c1")
	path := filepath.Join(t.TempDir(), "m1-c1.report")
	a, err := agent.New(agent.Config{Container: "m1-c1", Server: "s1", Manager: "m1", Log: slog.Default(), Key: key, Reports: path})
	require.NoError(t, err)
	require.NoError(t, agent.Leave(a, agentapi.Report{Kind: agentapi.SignalOverload, Container: "m1-c1", Service: "web", Reason: "cpu 95% above 80% for 1m"}))
	require.NoError(t, agent.Leave(a, agentapi.Report{Kind: agentapi.SignalIdle, Container: "m1-c1", Service: "web", Reason: "cpu 1% below 10% for 5m"}))

	r, ok, err := agentapi.TakeReport(path)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, agentapi.SignalIdle, r.Kind, "the last report")
	assert.True(t, trust.Verify(key, r.Auth, r.Fields()...), "signed with the container's key")
	_, ok, err = agentapi.TakeReport(path)
	require.NoError(t, err)
	assert.False(t, ok, "taken once")
}
