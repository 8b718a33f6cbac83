package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// DefaultReportsEvery is how often a node passes its agents' load reports
// on to the Manager: at most one summary per period, whatever the number
// of agents and reports.
const DefaultReportsEvery = 5 * time.Second

// reportExt is the file beside a container's record where its agent
// leaves its last load report (agentapi.ReportsEnv).
const reportExt = ".report"

// reportsPath is the file a container's agent leaves its reports in.
func (n *Node) reportsPath(container string) string { return n.path(container, reportExt) }

// takeReports takes the reports the agents left since the last take, one
// per container (its last), in container order. A report whose agent's
// tag does not check (when reports are authenticated), or that speaks of
// another container than its file's, is dropped: a MicroService that can
// write the file cannot sign.
func (n *Node) takeReports() []agentapi.Report {
	files, err := filepath.Glob(filepath.Join(n.cfg.StateDir, "*"+reportExt))
	if err != nil {
		return nil
	}
	slices.Sort(files)
	var out []agentapi.Report
	for _, f := range files {
		container := strings.TrimSuffix(filepath.Base(f), reportExt)
		r, ok, err := agentapi.TakeReport(f)
		switch {
		case err != nil:
			n.cfg.Log.Warn("taking an agent's report", "container", container, "error", err)
			continue
		case !ok:
			continue
		case r.Container != container:
			n.cfg.Log.Warn("dropped a report about another container", "file", f, "container", r.Container)
			continue
		case n.cfg.Key.Valid() && !trust.Verify(trust.ContainerKey(n.cfg.Key, container), r.Auth, r.Fields()...):
			n.cfg.Log.Warn("dropped a report its agent did not sign", "container", container)
			continue
		}
		r.Auth = "" // the summary is signed as a whole
		out = append(out, r)
	}
	return out
}

// forwardReports sends the Manager, every period, one summary of the load
// reports the agents left since the last one (none when they left none),
// signed with the node's key: one signal per node and period instead of
// one per report, however many agents report. A summary that could not
// be sent is sent with the next one, each container's last report kept.
func (n *Node) forwardReports(ctx context.Context, c signaler, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var pending []agentapi.Report
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pending = mergeReports(pending, n.takeReports())
		if len(pending) == 0 {
			continue
		}
		sig := workflows.ReportsSignal{Server: n.cfg.Server, Reports: pending}
		sig.Auth = agentapi.Sign(n.cfg.Key, sig.Fields())
		if err := c.SignalWorkflow(ctx, workflows.ManagerID(n.cfg.Manager), "", workflows.SignalReports, sig); err != nil {
			if ctx.Err() == nil {
				n.cfg.Log.Warn("passing the agents' reports on", "reports", len(pending), "error", err)
			}
			continue
		}
		n.cfg.Log.Info("passed the agents' reports on", "reports", len(pending))
		pending = nil
	}
}

// mergeReports adds newer reports to those not sent yet: a container's
// newer report replaces its older one.
func mergeReports(pending, newer []agentapi.Report) []agentapi.Report {
	for _, r := range newer {
		if i := slices.IndexFunc(pending, func(p agentapi.Report) bool { return p.Container == r.Container }); i >= 0 {
			pending[i] = r
			continue
		}
		pending = append(pending, r)
	}
	return pending
}

// forgetReport removes a stopped container's report not taken yet.
func (n *Node) forgetReport(container string) {
	_ = os.Remove(n.reportsPath(container))
}
