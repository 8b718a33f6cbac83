package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Lease heartbeats until the Manager cancels it or its workflow run ends.
// The Manager schedules one per server with the liveness window as its
// heartbeat timeout: when this node dies or is cut off, the heartbeats stop
// and the server times the lease out, which is how the Manager learns the
// server is lost. Heartbeats write no history event.
func (n *Node) Lease(ctx context.Context, in workflows.LeaseInput) error {
	return lease(ctx, in, n.cfg.Server, n.cfg.Manager, n.beats, n.cfg.Log)
}

// heartbeater records an activity's heartbeat by its task token and says
// what became of it (client.Client is one): nil, a CanceledError (the
// Manager cancelled the lease), NotFound (the lease is over: it timed out,
// or its workflow run ended), or any other error (Temporal could not be
// reached).
type heartbeater interface {
	RecordActivityHeartbeat(ctx context.Context, taskToken []byte, details ...any) error
}

func lease(ctx context.Context, in workflows.LeaseInput, server, manager string, hb heartbeater, log *slog.Logger) error {
	if in.Server != server || in.Manager != manager {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"lease for server %s of manager %s reached the node of server %s of manager %s: two nodes poll one task queue; give each its own --server",
			in.Server, in.Manager, server, manager), "WrongNode", nil)
	}
	info := activity.GetInfo(ctx)
	every := info.HeartbeatTimeout / 5
	if every <= 0 {
		every = time.Second
	}
	every = max(every, 100*time.Millisecond)
	// Each beat says when it was sent on the server's clock: the lease's
	// start as the server gave it, plus the time elapsed here since.
	began, start := time.Now(), info.StartedTime
	if start.IsZero() {
		start = began
	}
	beat := func() workflows.LeaseBeat { return workflows.LeaseBeat{At: start.Add(time.Since(began))} }
	tick := time.NewTicker(every)
	defer tick.Stop()
	if hb == nil { // no client of its own (tests): the SDK's heartbeats
		for {
			activity.RecordHeartbeat(ctx, beat())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	// The node heartbeats with its client rather than through the SDK,
	// which cancels an activity whose heartbeat fails for a second: a node
	// that cannot reach Temporal holds on to its lease (and never stops a
	// container for it), and tries again until Temporal answers; then
	// either the lease is still on (the outage was shorter than the
	// window) or the server says it is over and the Manager, which heard
	// the timeout, leases again.
	var unreached time.Time
	for {
		rctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		err := hb.RecordActivityHeartbeat(rctx, info.TaskToken, beat())
		cancel()
		var canceled *temporal.CanceledError
		var notFound *serviceerror.NotFound
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			if !unreached.IsZero() {
				log.Info("Temporal reached again: the lease holds", "server", server, "unreached", time.Since(unreached).Round(time.Millisecond))
				unreached = time.Time{}
			}
		case errors.As(err, &canceled):
			return err
		case errors.As(err, &notFound):
			// Over while Temporal could not be reached (it timed out): the
			// Manager leases again, and this node takes that lease.
			if !unreached.IsZero() {
				log.Info("Temporal reached again: the lease timed out meanwhile; the Manager leases again, nothing is stopped",
					"server", server, "unreached", time.Since(unreached).Round(time.Millisecond))
			}
			// Nothing to answer: the lease is closed already (an answer
			// would only be refused, and logged as the activity's error).
			return activity.ErrResultPending
		case unreachable(err):
			if unreached.IsZero() {
				unreached = time.Now()
				log.Warn("cannot reach Temporal: holding the lease and every container, trying again", "server", server, "every", every, "error", err)
			}
		default: // refused (paused, reset, an unknown namespace): as the SDK would
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// unreachable reports whether a heartbeat's error says Temporal could not
// be reached (or answer in time), rather than what became of the lease.
func unreachable(err error) bool {
	var (
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
	)
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) ||
		errors.Is(err, context.DeadlineExceeded)
}

// Reconcile makes this node's containers match what the Manager keeps:
// every container of the Manager here that in.Keep does not name, and that
// is not newer than the Manager's snapshot (in.Seq), is stopped. This fences
// the containers of a server that was lost and came back, and removes those
// the Manager never knew or gave up on. It returns what it stopped and what
// still runs, in ID order.
func (n *Node) Reconcile(ctx context.Context, in workflows.ReconcileInput) (workflows.ReconcileResult, error) {
	if err := wrongNode(in, n.cfg.Server, n.cfg.Manager); err != nil {
		return workflows.ReconcileResult{}, err
	}
	recs, err := n.records()
	if err != nil {
		return workflows.ReconcileResult{}, err
	}
	list := make([]held, 0, len(recs))
	for _, r := range recs {
		list = append(list, held{container: r.Container, running: alive(r.PID, r.Start)})
	}
	return reconcile(ctx, in, list, func(ctx context.Context, id string) error {
		return n.StopContainer(ctx, workflows.StopContainerInput{Container: id})
	})
}

func wrongNode(in workflows.ReconcileInput, server, manager string) error {
	if in.Server != server || in.Manager != manager {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"reconcile for server %s of manager %s reached the node of server %s of manager %s", in.Server, in.Manager, server, manager), "WrongNode", nil)
	}
	return nil
}

// held is a container a node holds, as Reconcile sees it.
type held struct {
	container string
	running   bool
}

// reconcile stops, in parallel, the containers of list that in does not
// keep, and reports what it stopped and what still runs.
func reconcile(ctx context.Context, in workflows.ReconcileInput, list []held, stop func(context.Context, string) error) (workflows.ReconcileResult, error) {
	out := workflows.ReconcileResult{Stopped: []string{}, Running: []string{}, Version: version.Get(), Wire: agentapi.Wire}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, h := range list {
		if slices.Contains(in.Keep, h.container) || fleet.SeqOf(h.container) > in.Seq {
			if h.running {
				out.Running = append(out.Running, h.container)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := stop(ctx, h.container)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("stopping %s, %w", h.container, err))
				return
			}
			out.Stopped = append(out.Stopped, h.container)
		}()
	}
	wg.Wait()
	slices.Sort(out.Stopped)
	slices.Sort(out.Running)
	if len(out.Stopped) > 0 {
		activity.GetLogger(ctx).Info("reconciled: stopped containers the Manager does not keep", "stopped", out.Stopped)
	}
	return out, errors.Join(errs...)
}

// agentPoll is how often the node looks at the agents it did not start
// itself (re-attached ones), whose exit it is not told of, and at every
// agent's heartbeat: a hung agent is reported within its window and one
// poll (and a heartbeat period, heartbeat.Every).
const agentPoll = 250 * time.Millisecond

// watch starts watching the agent of a container for an exit nobody asked for.
func (n *Node) watch(r record) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.agents[r.Container] = r
}

// unwatch stops watching a container's agent (it is being stopped).
func (n *Node) unwatch(container string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.agents, container)
}

// signaler sends the Manager a signal (client.Client is one): the
// workflow ID names the Manager, and an error means it was not delivered.
type signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// watchAgents reports to the Manager, as an error report, every container
// whose agent process exits without being stopped (killed, crashed): the
// Manager replaces it and destroys what is left of it. Exits of the agents
// this node started are heard at once; the others are polled every poll.
func (n *Node) watchAgents(ctx context.Context, c signaler, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.exited:
			n.agentGone(ctx, c, e.container, e.pid, e.why)
		case <-tick.C:
			n.mu.Lock()
			var gone, watched []record
			for _, r := range n.agents {
				if !alive(r.PID, r.Start) {
					gone = append(gone, r)
				} else {
					watched = append(watched, r)
				}
			}
			n.mu.Unlock()
			for _, r := range gone {
				n.agentGone(ctx, c, r.Container, r.PID, "exited")
			}
			for _, r := range watched {
				last, window, err := heartbeat.Read(n.path(r.Container, ".alive"))
				if err != nil { // an agent of an older node: no heartbeat to watch
					continue
				}
				if silent := time.Since(last); silent > window {
					n.agentHung(ctx, c, r, silent, window)
				}
			}
		}
	}
}

// agentHung reports a container whose agent has not touched its heartbeat
// file for longer than its window (stopped, wedged: alive, but neither
// serving its queue nor watching its service), and kills it and its
// MicroService, so that nothing of it holds the port while the Manager
// replaces it.
func (n *Node) agentHung(ctx context.Context, c signaler, r record, silent, window time.Duration) {
	unlock := n.lock(r.Container) // a stop in progress finishes first
	cur, err := n.load(r.Container)
	if err != nil || cur.PID != r.PID {
		unlock()
		return
	}
	n.unwatch(r.Container)
	stopGroup(r.PID, r.Start, 0)
	unlock()
	n.agentExits.Add(1)
	reason := fmt.Sprintf("its agent process (pid %d) stopped answering: no heartbeat for %s, past its window of %s (the service's health window); it was killed",
		r.PID, silent.Round(100*time.Millisecond), window)
	n.cfg.Log.Warn("container agent hung", "container", r.Container, "pid", r.PID, "silent", silent, "window", window)
	n.report(ctx, c, r.Container, reason, agentapi.CauseAgentHung)
}

// report tells the Manager a container failed, signed with the node's key.
func (n *Node) report(ctx context.Context, c signaler, container, reason, cause string) {
	rep := workflows.ErrorReport{Container: container, Reason: reason, Cause: cause}
	rep.Auth = agentapi.Sign(n.cfg.Key, rep.Fields())
	if err := c.SignalWorkflow(ctx, workflows.ManagerID(n.cfg.Manager), "", workflows.SignalErrorReport, rep); err != nil && ctx.Err() == nil {
		n.cfg.Log.Warn("reporting a failed container", "container", container, "cause", cause, "error", err)
	}
}

// agentGone reports the exit of a container's agent, unless the container
// was stopped on purpose (its record is gone) or started anew since.
func (n *Node) agentGone(ctx context.Context, c signaler, container string, pid int, why string) {
	unlock := n.lock(container) // a stop in progress finishes first
	r, err := n.load(container)
	unlock()
	n.mu.Lock()
	w, watched := n.agents[container]
	if watched && w.PID == pid {
		delete(n.agents, container)
	}
	n.mu.Unlock()
	if err != nil || r.PID != pid || !watched || w.PID != pid || alive(r.PID, r.Start) {
		return
	}
	n.agentExits.Add(1)
	reason := fmt.Sprintf("its agent process (pid %d) %s", pid, why)
	n.cfg.Log.Warn("container agent gone", "container", container, "pid", pid, "why", why)
	n.report(ctx, c, container, reason, agentapi.CauseAgentExit)
}
