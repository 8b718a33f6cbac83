package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/proc"
	"github.com/msm-project/msm/internal/traces"
	"github.com/msm-project/msm/workflows/agentapi"
)

// clockTicks is the kernel's USER_HZ, the unit of CPU times in /proc: 100
// on every Linux platform Go supports.
const clockTicks = 100

// cpuTicks is the CPU time (user + system) a process has used, in ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f, err := proc.StatFields(b)
	if err != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %v", pid, err)
	}
	// f[0] is field 3; utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return u + st, nil
}

// load tracks one instance against its scaling policy: it is fed a CPU
// percentage per sample and says when to report overload or idle.
type load struct {
	policy                 catalog.Scaling
	aboveSince, belowSince time.Time
	lastOverload, lastIdle time.Time
}

// observe takes one sample at now — CPU in percent of one core, and the
// requests in flight (-1 when the service does not report them) — and
// returns "overload", "idle" or "".
func (l *load) observe(now time.Time, pct, inFlight int) string {
	p := l.policy
	busy := p.InFlight > 0 && inFlight > p.InFlight
	quiet := p.InFlight == 0 || inFlight <= 0
	switch {
	case pct > p.Overload || busy:
		l.belowSince = time.Time{}
		if l.aboveSince.IsZero() {
			l.aboveSince = now
		}
		if now.Sub(l.aboveSince) >= p.Window && (l.lastOverload.IsZero() || now.Sub(l.lastOverload) >= p.Cooldown) {
			l.lastOverload = now
			return "overload"
		}
	case pct < p.Idle && quiet:
		l.aboveSince = time.Time{}
		if l.belowSince.IsZero() {
			l.belowSince = now
		}
		if now.Sub(l.belowSince) >= p.Stabilization && (l.lastIdle.IsZero() || now.Sub(l.lastIdle) >= p.Stabilization) {
			l.lastIdle = now
			return "idle"
		}
	default:
		l.aboveSince, l.belowSince = time.Time{}, time.Time{}
	}
	return ""
}

// monitor samples the service's CPU use until ctx ends and reports to the
// Manager when the policy says so. Samples stay here; only the reports
// reach the Manager's history.
func (a *Agent) monitor(ctx context.Context, pid int, spec catalog.Service, metricsURL string) {
	p := spec.Scaling
	if p.Sample <= 0 || a.client == nil {
		return
	}
	st := &load{policy: p}
	tick := time.NewTicker(p.Sample)
	defer tick.Stop()
	last, err := cpuTicks(pid)
	if err != nil {
		return
	}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cur, err := cpuTicks(pid)
			if err != nil {
				return // the process is gone
			}
			secs := now.Sub(lastAt).Seconds()
			pct := int(float64(cur-last) / clockTicks / secs * 100)
			last, lastAt = cur, now
			inFlight := -1
			if p.InFlight > 0 {
				inFlight = a.inFlight(ctx, metricsURL)
			}
			switch st.observe(now, pct, inFlight) {
			case "overload":
				reason := fmt.Sprintf("cpu %d%% above %d%% for %s", pct, p.Overload, p.Window)
				if p.InFlight > 0 && inFlight > p.InFlight {
					reason = fmt.Sprintf("%d requests in flight, above %d, for %s", inFlight, p.InFlight, p.Window)
				}
				// The report begins the extension's trace.
				span := traces.New("", "ReportOverload:"+spec.Name, traces.KindProducer)
				span.Attrs = map[string]string{"msm.container": a.cfg.Container, "msm.service": spec.Name, "msm.reason": reason}
				o := agentapi.OverloadSignal{Container: a.cfg.Container, Service: spec.Name, Reason: reason}
				if a.cfg.Traces != nil {
					o.Trace = span.Traceparent()
				}
				if a.cfg.Reports != "" {
					a.cfg.Traces.Finish(span, a.leave(agentapi.Report{Kind: agentapi.SignalOverload, Container: o.Container,
						Service: o.Service, Reason: o.Reason, Trace: o.Trace}))
					continue
				}
				o.Auth = agentapi.Sign(a.cfg.Key, o.Fields())
				a.cfg.Traces.Finish(span, a.report(ctx, agentapi.SignalOverload, o))
			case "idle":
				reason := fmt.Sprintf("cpu %d%% below %d%% for %s", pct, p.Idle, p.Stabilization)
				o := agentapi.IdleSignal{Container: a.cfg.Container, Service: spec.Name, Reason: reason}
				if a.cfg.Reports != "" {
					a.leave(agentapi.Report{Kind: agentapi.SignalIdle, Container: o.Container, Service: o.Service, Reason: o.Reason})
					continue
				}
				o.Auth = agentapi.Sign(a.cfg.Key, o.Fields())
				a.report(ctx, agentapi.SignalIdle, o)
			}
		}
	}
}

func (a *Agent) report(ctx context.Context, signal string, arg any) error {
	if err := a.client.Signal(ctx, agentapi.ManagerID(a.cfg.Manager), signal, arg); err != nil {
		a.cfg.Log.Warn("reporting load to the Manager", "signal", signal, "error", err)
		return err
	}
	a.cfg.Log.Info("reported", "signal", signal, "service", fmt.Sprint(arg))
	return nil
}

// leave leaves a load report for the node, which passes it on to the
// Manager in its next summary (one signal per node and period instead of
// one per report), signed with the container's key so the node can tell
// it from anything else that writes the file.
func (a *Agent) leave(r agentapi.Report) error {
	r.Auth = agentapi.Sign(a.cfg.Key, r.Fields())
	if err := agentapi.WriteReport(a.cfg.Reports, r); err != nil {
		a.cfg.Log.Warn("leaving a load report for the node", "kind", r.Kind, "error", err)
		return err
	}
	a.cfg.Log.Info("left for the node", "kind", r.Kind, "service", r.Service, "reason", r.Reason)
	return nil
}

// inFlight asks the service how many requests it has in flight, or -1.
func (a *Agent) inFlight(ctx context.Context, url string) int {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := a.healthy.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var m struct {
		InFlight *int `json:"in_flight"`
	}
	if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&m) != nil || m.InFlight == nil {
		return -1
	}
	return *m.InFlight
}
