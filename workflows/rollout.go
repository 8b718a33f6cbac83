package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
)

// WorkflowRoll is the workflow type of a roll's steps: the placement of
// instances of a service's new revision (the Provision code under its own
// name). The old instances go by Shrink as the new ones serve.
const WorkflowRoll = "Roll"

// rollChange gates rolling updates for the runs begun before, whose
// instances keep what they were loaded with.
const rollChange = "rolling-updates"

// RecordRoll is a roll's record: begun, failed, rolled back, done.
const RecordRoll = "roll"

// Names of the rollout messages.
const (
	// UpdateRollout (RolloutUpdate) pauses or resumes a service's roll.
	UpdateRollout = "rollout"
	// QueryRollout (a service's name, "" for all) answers []RolloutStatus.
	QueryRollout = "rollout"
)

// States of a Rollout.
const (
	RollRolling     = "rolling"      // replacing the old instances
	RollRollingBack = "rolling back" // the new revision failed: the old one comes back
	RollFailed      = "failed"       // the new revision failed, no rollback: it stopped
	RollDone        = "done"         // every instance runs the new revision
	RollRolledBack  = "rolled back"  // every instance runs the old revision again
)

// Rollout is a service's roll from one revision to another: begun by a
// catalog change of what its instances run (catalog.Service.Revision),
// carried out by the fleet's roll strategy (fleet.Roll), ended when no
// instance of another revision is left. The Manager keeps one per service,
// the last, across continue-as-new.
type Rollout struct {
	Service string `json:"service"`
	// From is the revision rolled from, To the one rolled to.
	From string `json:"from"`
	To   string `json:"to"`
	// Spec is the service at From: what a rollback loads.
	Spec   catalog.Service `json:"spec"`
	State  string          `json:"state"`
	Paused bool            `json:"paused,omitempty"`
	// Total is how many instances it had to replace when it began.
	Total   int       `json:"total"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Error is why the new revision failed.
	Error string `json:"error,omitempty"`
	// Agents says the roll replaces the instances whose agent is behind
	// their node too (msm upgrade agents): From and To are the same
	// revision when that is all it does (agents.go).
	Agents bool `json:"agents,omitempty"`
}

// active reports whether the roll still replaces instances.
func (r Rollout) active() bool { return r.State == RollRolling || r.State == RollRollingBack }

// target is the revision the service's instances should run: the one
// rolled from once the new one failed and was rolled back.
func (r Rollout) target() string {
	if r.State == RollRollingBack || r.State == RollRolledBack {
		return r.From
	}
	return r.To
}

// RolloutUpdate pauses or resumes a service's roll (msm rollout).
type RolloutUpdate struct {
	Service string `json:"service"`
	// Action is "pause" or "resume".
	Action string `json:"action"`
}

// RolloutStatus is a roll and where it stands: how many instances run
// the revision wanted (Fresh; Ready of all counted healthy, the new ones
// past the grace), how many another (Stale), and why it waits.
type RolloutStatus struct {
	Rollout
	Desired int    `json:"desired"`
	Fresh   int    `json:"fresh"`
	Stale   int    `json:"stale"`
	Ready   int    `json:"ready"`
	Waiting string `json:"waiting,omitempty"`
}

// rollout is the service's roll, or nil.
func (m *manager) rollout(service string) *Rollout {
	for i := range m.st.Rollouts {
		if m.st.Rollouts[i].Service == service {
			return &m.st.Rollouts[i]
		}
	}
	return nil
}

// revision is the revision a service's new instances are loaded with.
func (m *manager) revision(service string) string {
	if r := m.rollout(service); r != nil && r.target() != r.To {
		return r.target()
	}
	if s := m.service(service); s != nil {
		return s.Revision()
	}
	return ""
}

// runSpec is what a service's new instances run: the catalog's service,
// or what it ran at the revision rolled back to.
func (m *manager) runSpec(service string) *catalog.Service {
	s := m.service(service)
	r := m.rollout(service)
	if s == nil || r == nil || r.target() == r.To {
		return s
	}
	out := *s
	old := r.Spec
	out.Command, out.Args, out.Image, out.Env, out.Health, out.Limits, out.RunAs = old.Command, old.Args, old.Image, old.Env, old.Health, old.Limits, old.RunAs
	return &out
}

// runCatalog is the catalog the fleet places by: the one in force, with
// the spec rolled back to for a service whose new revision failed (so that
// its new instances are of the old image too, on the docker kind).
func (m *manager) runCatalog() *catalog.Catalog {
	back := false
	for _, r := range m.st.Rollouts {
		back = back || r.target() != r.To
	}
	if !back {
		return m.st.Catalog
	}
	c := *m.st.Catalog
	c.Services = slices.Clone(c.Services)
	for i := range c.Services {
		if s := m.runSpec(c.Services[i].Name); s != nil {
			c.Services[i] = *s
		}
	}
	return &c
}

// fleetRolls are the rolls that replace instances now, as the fleet's
// decision reads them.
func (m *manager) fleetRolls() []fleet.Roll {
	var out []fleet.Roll
	for _, r := range m.st.Rollouts {
		s := m.service(r.Service)
		if !r.active() || s == nil {
			continue
		}
		p := s.UpdatePolicy()
		out = append(out, fleet.Roll{Service: r.Service, Revision: r.target(), Surge: p.MaxSurge, Unavailable: p.MaxUnavailable,
			Grace: p.HealthGrace, Paused: r.Paused, Agents: r.Agents})
	}
	return out
}

// beginRolls starts a roll of every service whose revision the catalog
// just installed changed, prev being the catalog before it. The instances
// loaded before revisions were kept are taken to run prev's.
func (m *manager) beginRolls(ctx workflow.Context, prev *catalog.Catalog) {
	if !m.rolls {
		return
	}
	now := workflow.Now(ctx)
	m.st.Rollouts = slices.DeleteFunc(m.st.Rollouts, func(r Rollout) bool { return m.service(r.Service) == nil })
	for _, svc := range m.st.Catalog.Services {
		var was *catalog.Service
		if prev != nil {
			for i := range prev.Services {
				if prev.Services[i].Name == svc.Name {
					was = &prev.Services[i]
				}
			}
		}
		if was == nil {
			continue // new: its instances are of its revision from the first
		}
		// What its instances run now, and its spec.
		from, spec := was.Revision(), *was
		r := m.rollout(svc.Name)
		if r != nil && r.target() != r.To {
			from, spec = r.From, r.Spec
		}
		instances := 0
		for i := range m.st.Inventory.Containers {
			c := &m.st.Inventory.Containers[i]
			if c.Service != svc.Name || (c.State != fleet.Loaded && c.State != fleet.Starting) {
				continue
			}
			if c.Revision == "" {
				c.Revision = from
			}
			instances++
		}
		to := svc.Revision()
		if to == from {
			// An upgrade of its agents goes on: the revision is not its.
			if r != nil && r.active() && !r.agentRoll() {
				// Back at what it was rolling from (or rolled back to): the
				// roll has nothing left to do.
				r.State, r.Ended = RollDone, now
				m.record(ctx, Record{Kind: RecordRoll, Services: []string{svc.Name},
					Message: fmt.Sprintf("roll of %s to revision %s ended: the catalog is back at revision %s", svc.Name, r.To, from)})
			}
			continue
		}
		if r != nil && r.To == to && r.State != RollDone {
			continue // the same change again: the roll goes on
		}
		if instances == 0 {
			continue // nothing runs the old revision
		}
		replaced := ""
		if r != nil && r.active() {
			replaced = fmt.Sprintf(" (instead of the roll to %s, %s)", r.To, r.State)
		}
		// A roll of its agents goes on in the roll of the new revision.
		agents := r != nil && r.active() && r.Agents
		nr := Rollout{Service: svc.Name, From: from, To: to, Spec: spec, State: RollRolling, Total: instances, Started: now, Agents: agents}
		if r != nil {
			*r = nr
		} else {
			m.st.Rollouts = append(m.st.Rollouts, nr)
		}
		p := svc.UpdatePolicy()
		m.st.Pending = true
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{svc.Name}, Trigger: "catalog change (" + m.st.CatalogSource + ")",
			Message: fmt.Sprintf("roll %s from revision %s to %s%s: %d instance(s), max_surge %d, max_unavailable %d, health_grace %s, auto_rollback %t",
				svc.Name, from, to, replaced, instances, p.MaxSurge, p.MaxUnavailable, p.HealthGrace, p.AutoRollback)})
	}
}

// rollFailed stops the roll of c's service when c, of the revision rolled
// to, failed (to load, or reported by its agent): with auto_rollback the
// old revision is rolled back in at once, else the roll stops, the old
// instances serving on.
func (m *manager) rollFailed(ctx workflow.Context, c *fleet.Container, why string) {
	if !m.rolls || c.Service == "" {
		return
	}
	r := m.rollout(c.Service)
	if r == nil || r.State != RollRolling || c.Revision != r.To {
		return
	}
	if r.agentRoll() {
		// Only the new instances on agents of their node's version tell:
		// an old one failing is no reason, and there is nothing to roll
		// back to.
		if s := m.st.Inventory.Server(c.Server); s == nil || fleet.AgentBehind(*c, map[string]string{c.Server: s.Node}) {
			return
		}
		r.Error = fleet.Clip(why)
		r.State, r.Ended = RollFailed, workflow.Now(ctx)
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{c.Service},
			Message: fmt.Sprintf("upgrade of %s's agents stopped, the instances serve on (see why, then `msm rollout resume %s`): %s %s", c.Service, c.Service, c.ID, why)})
		return
	}
	r.Error = fleet.Clip(why)
	s := m.service(c.Service)
	if s != nil && s.UpdatePolicy().AutoRollback {
		r.State = RollRollingBack
		// Rolling back is not retrying what failed: no back-off for it.
		m.recovered(c.Service)
		m.st.Pending = true
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{c.Service},
			Message: fmt.Sprintf("roll of %s to revision %s failed, rolling back to revision %s (fix the catalog and save it to roll again): %s %s", c.Service, r.To, r.From, c.ID, why)})
		return
	}
	r.State = RollFailed
	r.Ended = workflow.Now(ctx)
	m.record(ctx, Record{Kind: RecordRoll, Services: []string{c.Service},
		Message: fmt.Sprintf("roll of %s to revision %s stopped, the instances of revision %s serve on (fix the catalog, or `msm rollout resume %s` to try again): %s %s", c.Service, r.To, r.From, c.Service, c.ID, why)})
}

// settleRolls ends the rolls with no instance of another revision left.
func (m *manager) settleRolls(ctx workflow.Context) {
	now := workflow.Now(ctx)
	// One walk of the inventory counts every active roll.
	var rolls []fleet.Roll
	var at []int
	for i, r := range m.st.Rollouts {
		if r.active() && m.service(r.Service) != nil {
			rolls = append(rolls, fleet.Roll{Service: r.Service, Revision: r.target(), Agents: r.Agents})
			at = append(at, i)
		}
	}
	counts := fleet.CountRolls(&m.st.Inventory, rolls, now)
	for k, i := range at {
		r, n := &m.st.Rollouts[i], counts[k]
		if n.Stale > 0 || m.holds(r.Service) {
			continue
		}
		took := now.Sub(r.Started).Round(100 * time.Millisecond)
		r.Ended = now
		for i := range m.st.Inventory.Containers {
			if c := &m.st.Inventory.Containers[i]; c.Service == r.Service {
				c.ReadyAt = time.Time{}
			}
		}
		if r.State == RollRollingBack {
			r.State = RollRolledBack
			m.record(ctx, Record{Kind: RecordRoll, Services: []string{r.Service},
				Message: fmt.Sprintf("roll of %s to revision %s rolled back in %s: its %d instance(s) run revision %s; the revision failed: %s", r.Service, r.To, took, n.Fresh, r.From, r.Error)})
			continue
		}
		r.State = RollDone
		if r.agentRoll() {
			m.record(ctx, Record{Kind: RecordRoll, Services: []string{r.Service},
				Message: fmt.Sprintf("upgrade of %s's agents done in %s: %d instance(s) replaced, %d run their node's agent", r.Service, took, r.Total, n.Fresh)})
			continue
		}
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{r.Service},
			Message: fmt.Sprintf("roll of %s to revision %s done in %s: %d instance(s) replaced, %d run it", r.Service, r.To, took, r.Total, n.Fresh)})
	}
}

// holds reports whether an operation running holds the service.
func (m *manager) holds(service string) bool {
	return slices.ContainsFunc(m.ops, func(op runningOp) bool { return slices.Contains(op.keys.Services, service) })
}

// nextGrace is when the next instance of a roll's new revision passes its
// health grace after now (an old one may go then), or zero.
func (m *manager) nextGrace(now time.Time) time.Time {
	var next time.Time
	rolls := map[string]fleet.Roll{}
	for _, r := range m.fleetRolls() {
		rolls[r.Service] = r
	}
	if len(rolls) == 0 {
		return next
	}
	for _, c := range m.st.Inventory.Containers {
		r, ok := rolls[c.Service]
		if !ok || c.Revision != r.Revision || c.State != fleet.Loaded || !c.Healthy {
			continue
		}
		if t := c.ReadyAt.Add(r.Grace); t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (m *manager) validateRollout(u RolloutUpdate) error {
	if m.st.Catalog == nil {
		return errors.New("the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	}
	if m.service(u.Service) == nil {
		return fmt.Errorf("unknown service %q: the catalog has %v", u.Service, m.serviceNames())
	}
	if !m.rolls {
		return errors.New("this run of the Manager began before rolling updates; it continues as a new run soon, then try again")
	}
	r := m.rollout(u.Service)
	switch u.Action {
	case "pause":
		if r == nil || !r.active() {
			return fmt.Errorf("%s has no roll in progress to pause (%s)", u.Service, m.rollState(u.Service))
		}
		if r.Paused {
			return fmt.Errorf("the roll of %s is paused already; `msm rollout resume %s` resumes it", u.Service, u.Service)
		}
	case "resume":
		if r == nil || !(r.active() && r.Paused) && r.State != RollFailed {
			return fmt.Errorf("%s has no paused or stopped roll to resume (%s)", u.Service, m.rollState(u.Service))
		}
	default:
		return fmt.Errorf("unknown rollout action %q: use pause or resume", u.Action)
	}
	return nil
}

// rollState says where a service's last roll stands, for an answer.
func (m *manager) rollState(service string) string {
	r := m.rollout(service)
	if r == nil {
		return "its instances run revision " + m.revision(service)
	}
	return fmt.Sprintf("its last roll, to revision %s, is %s", r.To, r.State)
}

func (m *manager) rolloutUpdate(ctx workflow.Context, u RolloutUpdate) (ProvisionAccepted, error) {
	if err := m.validateRollout(u); err != nil {
		return ProvisionAccepted{}, err
	}
	r := m.rollout(u.Service)
	m.st.Pending = true
	if u.Action == "pause" {
		r.Paused = true
		m.record(ctx, Record{Kind: RecordRoll, Services: []string{u.Service}, Trigger: "operator: rollout pause",
			Message: fmt.Sprintf("roll of %s to revision %s paused: nothing is added or removed until `msm rollout resume %s`", u.Service, r.target(), u.Service)})
		return ProvisionAccepted{Message: fmt.Sprintf("the roll of %s is paused; the instances of both revisions serve on", u.Service)}, nil
	}
	r.Paused = false
	if r.State == RollFailed {
		r.State, r.Ended, r.Error = RollRolling, time.Time{}, ""
		m.recovered(u.Service)
	}
	m.record(ctx, Record{Kind: RecordRoll, Services: []string{u.Service}, Trigger: "operator: rollout resume",
		Message: fmt.Sprintf("roll of %s to revision %s resumed", u.Service, r.target())})
	return ProvisionAccepted{Message: fmt.Sprintf("the roll of %s to revision %s goes on", u.Service, r.target())}, nil
}

// rolloutStatus answers the rollout query: the roll of service, or of
// every service that has one ("").
func (m *manager) rolloutStatus(service string) ([]RolloutStatus, error) {
	if service != "" && m.service(service) == nil {
		return nil, fmt.Errorf("unknown service %q: the catalog has %v", service, m.serviceNames())
	}
	out := []RolloutStatus{}
	for _, r := range m.st.Rollouts {
		if service != "" && r.Service != service {
			continue
		}
		if s := m.rolloutOf(r); s != nil {
			out = append(out, *s)
		}
	}
	return out, nil
}

// rolloutOf is a roll with where it stands now.
func (m *manager) rolloutOf(r Rollout) *RolloutStatus {
	s := m.service(r.Service)
	if s == nil {
		return nil
	}
	p := s.UpdatePolicy()
	fr := fleet.Roll{Service: r.Service, Revision: r.target(), Surge: p.MaxSurge, Unavailable: p.MaxUnavailable, Grace: p.HealthGrace, Agents: r.Agents}
	// A query has no clock of its own: the last decision's time will do
	// for the grace (workflow.Now is that of the last task).
	n := fleet.CountRoll(&m.st.Inventory, fr, m.now)
	st := &RolloutStatus{Rollout: r, Desired: m.desired(*s), Fresh: n.Fresh, Stale: n.Stale, Ready: n.Ready}
	if r.active() {
		st.Waiting = n.Waiting(fr, st.Desired)
	}
	st.Spec = catalog.Service{}
	return st
}
