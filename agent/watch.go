package agent

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/msm-project/msm/workflows/agentapi"
)

// exitNoticed is how long a health check refused waits for the exit of the
// service to be noticed before it is reported as the failure: an exit is
// seen within milliseconds (the process is the agent's child).
const exitNoticed = 250 * time.Millisecond

// watch reports the loaded MicroService to the Manager when it exits,
// fails its health check FailureThreshold times in a row, or goes past its
// limits (breach: then it is killed first, every process of its user),
// once, until ctx ends (on unload). An exit the agent caused (unload) is
// not reported.
func (a *Agent) watch(ctx context.Context, l *loaded, in agentapi.LoadServiceInput) {
	if a.client == nil {
		return
	}
	h := in.Service.Health
	interval := h.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	url := serviceURL(in, h.Path)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// The limits are checked only of a service that has some.
	var limits <-chan time.Time
	if l.pids > 0 || l.memory > 0 {
		lt := time.NewTicker(limitEvery)
		defer lt.Stop()
		limits = lt.C
	}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.done:
			if ctx.Err() != nil {
				return // unloaded on purpose
			}
			a.fail(in, l, agentapi.CauseExit, fmt.Sprintf("%s exited (%v); its last output: %q", in.Service.Name, l.cmd.ProcessState, l.out.String()))
			return
		case <-limits:
			if why := l.breach(); why != "" {
				a.failPast(in, l, why, "")
				return
			}
		case <-tick.C:
			err := a.check(ctx, url, timeout)
			if err == nil {
				failures = 0
				continue
			}
			failures++
			if failures < max(h.FailureThreshold, 1) {
				continue
			}
			// A service that just exited refuses connections before its
			// exit is noticed: then the exit, its status and last output,
			// is what to report.
			if errors.Is(err, syscall.ECONNREFUSED) {
				select {
				case <-l.done:
					if ctx.Err() != nil {
						return
					}
					a.fail(in, l, agentapi.CauseExit, fmt.Sprintf("%s exited (%v); its last output: %q", in.Service.Name, l.cmd.ProcessState, l.out.String()))
					return
				case <-ctx.Done():
					return
				case <-time.After(exitNoticed):
				}
			}
			a.fail(in, l, agentapi.CauseHealth, fmt.Sprintf("%s failed %d health checks in a row: %v", in.Service.Name, failures, err))
			return
		}
	}
}

// fail reports l failed for reason, of cause. A service past its limits (breach)
// is killed first, every process of its user, and that is the reason
// given, reason after it. One that failed within them is left to the
// Manager's recovery, with its usage against its limits in the reason: a
// fork bomb that made the service itself fail (a Go program dies when it
// cannot start a thread) left it just under its pids limit, and that says
// why.
func (a *Agent) fail(in agentapi.LoadServiceInput, l *loaded, cause, reason string) {
	if why := l.breach(); why != "" {
		a.failPast(in, l, why, reason)
		return
	}
	if use := l.usage(); use != "" {
		reason += " (" + use + ")"
	}
	a.reportError(in, cause, reason)
}

// failPast kills the service l, past its limits as why says, and reports
// it failed for that, reason (if any) after it.
func (a *Agent) failPast(in agentapi.LoadServiceInput, l *loaded, why, reason string) {
	killed := l.kill()
	why = fmt.Sprintf("%s %s: its %d processes were killed", in.Service.Name, why, killed)
	if reason != "" {
		why += "; " + reason
	}
	a.reportError(in, agentapi.CauseLimit, why)
}

func (a *Agent) reportError(in agentapi.LoadServiceInput, cause, reason string) {
	a.cfg.Log.Warn("reporting a failed MicroService", "service", in.Service.Name, "cause", cause, "reason", reason)
	r := agentapi.ErrorReport{Container: a.cfg.Container, Service: in.Service.Name, Reason: reason, Cause: cause}
	r.Auth = agentapi.Sign(a.cfg.Key, r.Fields())
	// Not ctx: the report must go out even as the agent is being stopped.
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.client.Signal(rctx, agentapi.ManagerID(a.cfg.Manager), agentapi.SignalErrorReport, r); err != nil {
		a.cfg.Log.Error("reporting a failed MicroService", "error", err)
	}
}
