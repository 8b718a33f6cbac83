package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Liveness: the Manager holds one lease per server, a long-running Lease
// activity on the server's node queue whose heartbeat timeout is the
// catalog's liveness window. The node heartbeats it (no history event per
// heartbeat); when the node dies or is cut off, the lease times out and the
// server is lost: its containers fail and are replaced on other servers at
// once. A fence (Reconcile with nothing kept) then waits on the node's queue:
// when the server comes back, the node stops the stale containers before it
// takes anything else, their leases are released, and the server is ready
// again. A lease that timed out because Temporal, or the Manager, was away
// (an outage: no node could be heard) loses nothing until its node has had
// manager.outage_grace to lease again.

// SignalServerLost (a server ID) tells a running operation that a server
// it works on is lost: its steps there end at once, so the recovery that
// the Manager runs next does not wait for them to time out.
const SignalServerLost = "server-lost"

// lostServers ends an operation's steps on servers reported lost.
type lostServers struct {
	lost    map[string]bool
	cancels map[string][]workflow.CancelFunc
}

// watchLost listens for SignalServerLost for the rest of the operation.
func watchLost(ctx workflow.Context) *lostServers {
	l := &lostServers{lost: map[string]bool{}, cancels: map[string][]workflow.CancelFunc{}}
	ch := workflow.GetSignalChannel(ctx, SignalServerLost)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var server string
			if !ch.Receive(ctx, &server) {
				return
			}
			l.lost[server] = true
			for _, cancel := range l.cancels[server] {
				cancel()
			}
			delete(l.cancels, server)
		}
	})
	return l
}

// on returns the context of a step on server: cancelled once it is lost.
func (l *lostServers) on(ctx workflow.Context, server string) workflow.Context {
	ctx, cancel := workflow.WithCancel(ctx)
	if l.lost[server] {
		cancel()
	} else {
		l.cancels[server] = append(l.cancels[server], cancel)
	}
	return ctx
}

// explain names the loss when a step failed because its server was lost.
func (l *lostServers) explain(server, msg string) string {
	if l.lost[server] {
		return "server " + server + " lost while the step ran"
	}
	return msg
}

// livenessChange gates the leases for Manager runs that began before them.
const livenessChange = "liveness"

// leaseTerm is how long one lease activity lasts before it is renewed.
const leaseTerm = time.Hour

// reconcileTimeout bounds one Reconcile: stops run side by side, each up to
// the node's stop grace.
const reconcileTimeout = time.Minute

// queues are the task queues of this Manager's nodes and agents.
func (m *manager) queues() queues {
	if m.st.Catalog == nil {
		return queues{}
	}
	return queuesOf(m.st.Catalog.Manager.Kind, m.st.Manager)
}

// watch is one server's running lease loop.
type watch struct{ cancel workflow.CancelFunc }

// liveness is the window of the catalog in force.
func (m *manager) liveness() time.Duration {
	if m.st.Catalog != nil && m.st.Catalog.Manager.Liveness > 0 {
		return m.st.Catalog.Manager.Liveness
	}
	return catalog.DefaultLiveness
}

// watched reports whether a server in this state has a node to hold a lease.
func watched(s *fleet.Server) bool {
	return s != nil && (s.State == fleet.ServerReady || s.State == fleet.ServerDraining || s.State == fleet.ServerLost)
}

// watchAll starts the leases of every server with a node (at the start of a run).
func (m *manager) watchAll(ctx workflow.Context) {
	for _, s := range m.st.Inventory.Servers {
		m.watch(ctx, s.ID)
	}
}

// watch keeps a lease on a server until it leaves the inventory or fails:
// lease, and when the lease times out, lose the server, fence it when it
// comes back, and lease again. A timeout that came long past due (away)
// loses nothing yet: the server waits for its node (awaitNode).
func (m *manager) watch(ctx workflow.Context, server string) {
	if !m.leases || m.watches[server] != nil || !watched(m.st.Inventory.Server(server)) {
		return
	}
	ctx, cancel := workflow.WithCancel(ctx)
	w := &watch{cancel: cancel}
	m.watches[server] = w
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() {
			if m.watches[server] == w {
				delete(m.watches, server)
			}
		}()
		for ctx.Err() == nil {
			s := m.st.Inventory.Server(server)
			if !watched(s) {
				return
			}
			if s.State == fleet.ServerLost {
				m.fence(ctx, server)
				continue
			}
			window := m.liveness()
			if !s.Unheard.IsZero() {
				m.awaitNode(ctx, server, window)
				continue
			}
			// A server whose node was never heard from may still be
			// booting (a new instance): it gets as long as a container
			// start waits for its node before it counts as lost.
			wait := window
			if !s.NodeSeen {
				wait = max(window, nodeWaitTimeout)
			}
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				TaskQueue:              m.queues().node(server),
				ScheduleToStartTimeout: wait,
				StartToCloseTimeout:    leaseTerm,
				HeartbeatTimeout:       window,
				RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
			})
			scheduled := workflow.Now(ctx)
			err := workflow.ExecuteActivity(actx, ActivityLease, LeaseInput{Manager: m.st.Manager, Server: server}).Get(ctx, nil)
			switch {
			case ctx.Err() != nil:
				return
			case isLivenessTimeout(err):
				if !m.away(ctx, server, err, scheduled.Add(wait), window) {
					m.lose(ctx, server, window)
				}
			case err != nil && !isTimeout(err, enumspb.TIMEOUT_TYPE_START_TO_CLOSE):
				// The node stopped on purpose, or refused the lease: lease
				// again after a pause, so a refusal does not spin.
				workflow.GetLogger(ctx).Warn("lease ended", "server", server, "error", err)
				_ = workflow.Sleep(ctx, window)
			}
		}
	})
}

// unwatch ends a server's lease (it was released).
func (m *manager) unwatch(server string) {
	if w := m.watches[server]; w != nil {
		w.cancel()
		delete(m.watches, server)
	}
}

// lose records a server whose lease timed out: its containers fail and the
// services they served are recovered on the other servers.
func (m *manager) lose(ctx workflow.Context, server string, window time.Duration) {
	s := m.st.Inventory.Server(server)
	if s == nil || s.State == fleet.ServerLost {
		return
	}
	why := fmt.Sprintf("server %s lost: its node agent was unheard for %s", server, window)
	if !s.NodeSeen {
		why = fmt.Sprintf("server %s lost: its node agent never came up within %s", server, max(window, nodeWaitTimeout))
	}
	m.loseFor(ctx, server, why)
}

// loseFor loses server, why saying so.
func (m *manager) loseFor(ctx workflow.Context, server, why string) {
	s := m.st.Inventory.Server(server)
	if s == nil || s.State == fleet.ServerLost {
		return
	}
	s.Unheard = time.Time{}
	// The services whose new instances were starting or loading there: a
	// service that takes its servers down as it starts must back off like
	// one that crashes, or it takes down the next server at once.
	var starting []string
	for _, c := range m.st.Inventory.OnServer(server) {
		if c.Service != "" && (c.State == fleet.Starting || (c.State == fleet.Loaded && !c.Healthy)) && !slices.Contains(starting, c.Service) {
			starting = append(starting, c.Service)
		}
	}
	lost := m.st.Inventory.Lose(server, why)
	if m.forgets {
		s.LostAt = workflow.Now(ctx)
	}
	if len(starting) > 0 && workflow.GetVersion(ctx, lostBackoffChange, workflow.DefaultVersion, 1) == 1 {
		for _, svc := range starting {
			m.failed(ctx, svc, "lost:"+server, fmt.Sprintf("%s while an instance of %s was starting there", why, svc))
		}
	}
	var ids, services []string
	for _, c := range lost {
		ids = append(ids, c.ID)
		if c.Service != "" {
			m.count(CountRecoveries, 1, c.Service, CauseServerLost)
		}
		if c.Service != "" && !slices.Contains(services, c.Service) {
			services = append(services, c.Service)
		}
		if c.Service != "" && !slices.Contains(m.st.Recovering, c.Service) {
			m.st.Recovering = append(m.st.Recovering, c.Service)
		}
	}
	m.st.Pending = true
	m.record(ctx, Record{Kind: RecordRecover, Services: services, Servers: []string{server},
		Message: fmt.Sprintf("%s; recovering its %d container(s) %v on the other servers, to be fenced when it comes back", why, len(ids), ids)})
	// Operations with steps there end them now rather than time out.
	for _, op := range m.opsOn(server) {
		workflow.Go(ctx, func(ctx workflow.Context) {
			_ = workflow.SignalExternalWorkflow(ctx, op, "", SignalServerLost, server).Get(ctx, nil)
		})
	}
}

// outageChange gates telling a lease that timed out because Temporal, or
// this Manager, was away from one whose node went silent (issue 17).
const outageChange = "outage-grace"

// outageGrace is how long a server whose lease timed out during an outage
// waits for its node (manager.outage_grace).
func (m *manager) outageGrace() time.Duration {
	if m.st.Catalog != nil && m.st.Catalog.Manager.OutageGrace > 0 {
		return m.st.Catalog.Manager.OutageGrace
	}
	return catalog.OutageGraceFor(m.liveness())
}

// away reports whether a lease's timeout says that Temporal, or this
// Manager, was away rather than the server's node: it reached the Manager
// more than a window after it was due. A silent node's lease times out a
// window after its last heartbeat (each says when it was sent, on the
// server's clock); one never taken, its schedule-to-start limit after it
// was scheduled (due). During an outage of Temporal no heartbeat arrives,
// and every overdue timeout fires at once when it comes back, long past
// due: no node could have been heard, so none is taken for lost yet. The
// server then waits, up to manager.outage_grace, for its node to lease
// again (Unheard; awaitNode), and an event says why.
func (m *manager) away(ctx workflow.Context, server string, err error, due time.Time, window time.Duration) bool {
	var timeout *temporal.TimeoutError
	if !errors.As(err, &timeout) {
		return false
	}
	var beat LeaseBeat
	heartbeat := timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_HEARTBEAT
	if heartbeat {
		// A node that sends no time (an older one): on time, as before.
		if !timeout.HasLastHeartbeatDetails() || timeout.LastHeartbeatDetails(&beat) != nil || beat.At.IsZero() {
			return false
		}
		due = beat.At.Add(window)
	}
	now := workflow.Now(ctx)
	if now.Sub(due) <= window || workflow.GetVersion(ctx, outageChange, workflow.DefaultVersion, 1) != 1 {
		return false
	}
	s := m.st.Inventory.Server(server)
	grace := m.outageGrace()
	s.Unheard = now.Add(grace)
	seen := fmt.Sprintf("server %s's lease timed out %s after its node's last heartbeat, where a silent node's times out after the liveness window (%s)",
		server, now.Sub(beat.At).Round(100*time.Millisecond), window)
	if !heartbeat {
		seen = fmt.Sprintf("server %s's lease, not taken, timed out %s late", server, now.Sub(due).Round(100*time.Millisecond))
	}
	m.record(ctx, Record{Kind: RecordEvent, Servers: []string{server}, Message: fmt.Sprintf(
		"%s: Temporal or this Manager was away, not its node; waiting up to %s (manager.outage_grace) for its node to lease again before recovering anything",
		seen, grace)})
	return true
}

// awaitNode waits for the node of a server whose lease timed out during an
// outage (Unheard) to lease again: a lease of one window's term, that the
// node has until Unheard to take. Held through its term, the node is back
// and nothing was recovered; not taken by then, the server is lost as any
// other whose node is silent.
func (m *manager) awaitNode(ctx workflow.Context, server string, window time.Duration) {
	s := m.st.Inventory.Server(server)
	now := workflow.Now(ctx)
	lost := func() {
		m.loseFor(ctx, server, fmt.Sprintf("server %s lost: its node did not lease again within %s (manager.outage_grace) after Temporal or this Manager came back",
			server, m.outageGrace()))
	}
	if !now.Before(s.Unheard) {
		lost()
		return
	}
	left := s.Unheard.Sub(now)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              m.queues().node(server),
		ScheduleToStartTimeout: left,
		StartToCloseTimeout:    window,
		HeartbeatTimeout:       window,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	err := workflow.ExecuteActivity(actx, ActivityLease, LeaseInput{Manager: m.st.Manager, Server: server}).Get(ctx, nil)
	s = m.st.Inventory.Server(server)
	switch {
	case ctx.Err() != nil || s == nil || s.Unheard.IsZero():
		return
	case isTimeout(err, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START):
		// Not taken within the grace; unless Temporal was away again
		// meanwhile (the timeout late itself), the node is gone.
		if !m.away(ctx, server, err, now.Add(left), window) {
			lost()
		}
	case isTimeout(err, enumspb.TIMEOUT_TYPE_HEARTBEAT):
		// It took the lease and went silent: away again, or gone.
		if !m.away(ctx, server, err, time.Time{}, window) {
			m.lose(ctx, server, window)
		}
	default:
		// Held for its term (or ended by the node itself): the node
		// answers. Its containers ran on all along.
		waited := workflow.Now(ctx).Sub(s.Unheard.Add(-m.outageGrace()))
		s.Unheard = time.Time{}
		n := 0
		for _, c := range m.st.Inventory.OnServer(server) {
			if c.State != fleet.Failed {
				n++
			}
		}
		m.record(ctx, Record{Kind: RecordEvent, Servers: []string{server}, Message: fmt.Sprintf(
			"server %s's node leased again after the outage, %s after its lease timed out: nothing was recovered, its %d container(s) kept",
			server, waited.Round(100*time.Millisecond), n)})
	}
}

// lostBackoffChange gates counting a server lost while a service's
// instance starts there as that service's failure.
const lostBackoffChange = "lost-server-backoff"

// fence waits until a lost server's node answers, has it stop every
// container the Manager gave up on (and any it never knew), and takes the
// server back.
func (m *manager) fence(ctx workflow.Context, server string) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           m.queues().node(server),
		StartToCloseTimeout: reconcileTimeout,
		// No schedule-to-start limit: the fence waits for the node, however
		// long it stays away.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
	in := ReconcileInput{Manager: m.st.Manager, Server: server, Keep: []string{}, Seq: m.st.Inventory.Seq}
	var out ReconcileResult
	if err := workflow.ExecuteActivity(actx, ActivityReconcile, in).Get(ctx, &out); err != nil {
		return // cancelled: the server left the inventory
	}
	n := m.st.Inventory.Fenced(server)
	if s := m.st.Inventory.Server(server); s != nil {
		s.LostAt = time.Time{}
	}
	m.nodeSays(ctx, server, out, nil)
	m.st.Pending = true
	m.event(ctx, fmt.Sprintf("server %s is back: its node stopped %d stale container(s) %v; %d lease(s) released, the server takes containers again",
		server, len(out.Stopped), out.Stopped, n))
}

// collect has a node that came up (again) stop the containers of this
// Manager that the inventory does not keep: ones it never knew (a start
// whose result was lost), and failed ones it could not destroy before.
// adopted are the containers the node re-attached to (started by the node
// before it restarted); it started the others itself.
func (m *manager) collect(ctx workflow.Context, server string, adopted []string) {
	if !m.leases || !watched(m.st.Inventory.Server(server)) {
		return
	}
	keep := []string{}
	for _, c := range m.st.Inventory.OnServer(server) {
		if c.State != fleet.Failed {
			keep = append(keep, c.ID)
		}
	}
	in := ReconcileInput{Manager: m.st.Manager, Server: server, Keep: keep, Seq: m.st.Inventory.Seq}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              m.queues().node(server),
		ScheduleToStartTimeout: nodeWaitTimeout,
		StartToCloseTimeout:    reconcileTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		var out ReconcileResult
		if err := workflow.ExecuteActivity(actx, ActivityReconcile, in).Get(ctx, &out); err != nil {
			m.event(ctx, fmt.Sprintf("node %s: could not remove the containers the Manager does not keep: %s", server, rootMessage(err)))
			return
		}
		m.nodeSays(ctx, server, out, adopted)
		var unknown []string
		for _, id := range out.Stopped {
			if c := m.st.Inventory.Container(id); c != nil && c.State == fleet.Failed {
				m.st.Inventory.Destroyed(id, c.Error)
			} else if c == nil {
				unknown = append(unknown, id)
			}
		}
		if len(out.Stopped) > 0 {
			m.st.Pending = true
			m.event(ctx, fmt.Sprintf("node %s: stopped %d container(s) the Manager does not keep %v (%d it did not know)", server, len(out.Stopped), out.Stopped, len(unknown)))
		}
	})
}

// nodeSays records the version a server's node answered a Reconcile with
// ("" for a node of wire 1, which says none), and says so in an event when
// it changed, or when the node speaks a newer contract than this Manager
// (its workers must be upgraded first: docs/operations.md). The agents of
// the server's containers not known yet, but for those the node adopted
// (started by the node before its restart), are this node's: it started
// them (the first starts on a new server may come before its answer).
func (m *manager) nodeSays(ctx workflow.Context, server string, out ReconcileResult, adopted []string) {
	s := m.st.Inventory.Server(server)
	if s == nil {
		return
	}
	for _, c := range m.st.Inventory.OnServer(server) {
		if c.Agent == "" && c.State != fleet.Failed && !slices.Contains(adopted, c.ID) {
			if k := m.st.Inventory.Container(c.ID); k != nil {
				k.Agent = out.Version
			}
		}
	}
	if out.Wire > agentapi.Wire {
		m.event(ctx, fmt.Sprintf("node %s (msm %s) speaks wire contract %d, newer than this Manager's %d: upgrade the Manager's workers before its nodes (docs/operations.md)",
			server, out.Version, out.Wire, agentapi.Wire))
	}
	if s.Node == out.Version {
		return
	}
	if s.Node != "" {
		m.event(ctx, fmt.Sprintf("node %s now runs msm %s (was %s)", server, orUnknown(out.Version), s.Node))
	}
	s.Node = out.Version
	if m.agents {
		// The agents it adopted may be behind it now: what waits is
		// replaced (fleet/agents.go).
		m.st.Pending = true
	}
}

// nodeVersionsChange gates asking a node its version (a Reconcile that
// keeps everything) when the Manager first hears from it in a run and
// does not know it: a node that came up before the Manager ran (msm dev
// starts its nodes first), or on a new server, says it no other way.
const nodeVersionsChange = "node-versions"

// askVersion has server's node say its version, once a run, when it is not
// known (a node of wire 1 says none: asked once a run).
func (m *manager) askVersion(ctx workflow.Context, s *fleet.Server) {
	if !m.versions || s.Node != "" || m.asked[s.ID] {
		return
	}
	m.asked[s.ID] = true
	m.collect(ctx, s.ID, nil)
}

// orUnknown is a version, or says it is not known.
func orUnknown(v string) string {
	if v == "" {
		return "unknown (wire 1)"
	}
	return v
}

// isLivenessTimeout reports whether a lease ended because the node was not
// heard from: it never took the lease, or its heartbeats stopped.
func isLivenessTimeout(err error) bool {
	return isTimeout(err, enumspb.TIMEOUT_TYPE_HEARTBEAT) || isTimeout(err, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START)
}

func isTimeout(err error, kind enumspb.TimeoutType) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == kind
}
