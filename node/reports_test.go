package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

var (
	rpRoot   = trust.Key{ID: "k1", Secret: []byte(strings.Repeat("r", trust.KeySize))}
	rpForger = trust.Key{ID: "k1", Secret: []byte(strings.Repeat("f", trust.KeySize))}
)

// rpNode is a node of server s1 of Manager m1 whose key is root's.
func rpNode(t *testing.T, root trust.Key) *Node {
	t.Helper()
	n, err := New(Config{Server: "s1", Manager: "m1", StateDir: t.TempDir(), AgentCommand: []string{"msm-agent"},
		Key: trust.ServerKey(root, "m1", "s1")})
	require.NoError(t, err)
	return n
}

// rpLeave leaves a report as container's agent does, its tag under the
// agent key's root (an agent whose root is not its node's forges).
func rpLeave(t *testing.T, n *Node, root trust.Key, file, container, kind, reason string) {
	t.Helper()
	r := agentapi.Report{Kind: kind, Container: container, Service: "web", Reason: reason}
	r.Auth = agentapi.Sign(trust.ContainerKey(trust.ServerKey(root, "m1", "s1"), container), r.Fields())
	require.NoError(t, agentapi.WriteReport(n.reportsPath(file), r))
}

// reportSignals records the summaries a node sends, standing in for the
// Manager; failing fails the next sends.
type reportSignals struct {
	mu      sync.Mutex
	sent    []workflows.ReportsSignal
	failing int
}

func (s *reportSignals) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	if id != workflows.ManagerID("m1") || name != workflows.SignalReports {
		panic("unexpected signal " + name + " to " + id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing > 0 {
		s.failing--
		return errors.New("the Manager is away")
	}
	s.sent = append(s.sent, arg.(workflows.ReportsSignal))
	return nil
}

func (s *reportSignals) all() []workflows.ReportsSignal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]workflows.ReportsSignal(nil), s.sent...)
}

// TestTakeReportsKeepsEachAgentsLastSignedReport: a take returns one
// report per container, its agent's last, without its tag (the summary is
// signed as a whole); a report its agent did not sign, or that speaks of
// another container than its file's, is dropped; each is taken once.
func TestTakeReportsKeepsEachAgentsLastSignedReport(t *testing.T) {
	n := rpNode(t, rpRoot)
	rpLeave(t, n, rpRoot, "m1-c1", "m1-c1", agentapi.SignalOverload, "cpu 95% above 80% for 1m")
	rpLeave(t, n, rpRoot, "m1-c1", "m1-c1", agentapi.SignalIdle, "cpu 2% below 10% for 5m")
	rpLeave(t, n, rpRoot, "m1-c2", "m1-c2", agentapi.SignalOverload, "cpu 91% above 80% for 1m")
	rpLeave(t, n, rpForger, "m1-c3", "m1-c3", agentapi.SignalOverload, "forged")
	rpLeave(t, n, rpRoot, "m1-c5", "m1-c4", agentapi.SignalOverload, "m1-c4's report in m1-c5's file")

	got := n.takeReports()
	assert.Equal(t, []agentapi.Report{
		{Kind: agentapi.SignalIdle, Container: "m1-c1", Service: "web", Reason: "cpu 2% below 10% for 5m"},
		{Kind: agentapi.SignalOverload, Container: "m1-c2", Service: "web", Reason: "cpu 91% above 80% for 1m"},
	}, got)
	assert.Empty(t, n.takeReports(), "each report is taken once")
	left, err := filepath.Glob(filepath.Join(n.cfg.StateDir, "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "nothing left behind")

	// Unauthenticated (no key): every report of its own container passes.
	n = rpNode(t, trust.Key{})
	rpLeave(t, n, rpForger, "m1-c3", "m1-c3", agentapi.SignalOverload, "unsigned world")
	assert.Len(t, n.takeReports(), 1)
}

// TestForwardReportsSendsOneSignedSummaryPerPeriod: 20 agents leave 400
// reports over 0.6 s; the node sends at most one summary per period
// (50 ms), each signed with its key, with at most one report per
// container, and every agent's last report arrives. A summary that could
// not be sent goes with the next one.
func TestForwardReportsSendsOneSignedSummaryPerPeriod(t *testing.T) {
	const agents, reports, every = 20, 400, 50 * time.Millisecond
	n := rpNode(t, rpRoot)
	sig := &reportSignals{failing: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); n.forwardReports(ctx, sig, every) }()
	for i := range reports {
		c := fmt.Sprintf("m1-c%d", 1+i%agents)
		rpLeave(t, n, rpRoot, c, c, agentapi.SignalOverload, fmt.Sprintf("report %d", i))
		time.Sleep(600 * time.Millisecond / reports)
	}
	// Every agent's last report, at the latest one period and a retry on.
	last := map[string]string{}
	for i := reports - agents; i < reports; i++ {
		last[fmt.Sprintf("m1-c%d", 1+i%agents)] = fmt.Sprintf("report %d", i)
	}
	require.Eventually(t, func() bool {
		got := map[string]string{}
		for _, s := range sig.all() {
			for _, r := range s.Reports {
				got[r.Container] = r.Reason
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(last)
	}, 5*time.Second, every)
	cancel()
	<-done
	took := time.Since(began)

	sent := sig.all()
	t.Logf("%d reports of %d agents in %s: %d summaries", reports, agents, took.Round(time.Millisecond), len(sent))
	assert.LessOrEqual(t, len(sent), int(took/every)+1, "one summary per period at most")
	assert.Less(t, len(sent), reports/10)
	total := 0
	for _, s := range sent {
		assert.Equal(t, "s1", s.Server)
		assert.True(t, trust.Verify(trust.ServerKey(rpRoot, "m1", "s1"), s.Auth, s.Fields()...), "signed by the node")
		seen := map[string]bool{}
		for _, r := range s.Reports {
			assert.False(t, seen[r.Container], "%s twice in one summary", r.Container)
			seen[r.Container] = true
			assert.Empty(t, r.Auth)
		}
		total += len(s.Reports)
	}
	assert.Less(t, total, reports, "a container's reports of one period are one")
}
