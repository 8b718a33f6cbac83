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

// Workflow type names of operations. Extend runs the same code as
// Provision (carry out a placement plan) under its own name, so the Web UI
// tells them apart.
const (
	WorkflowProvision = "Provision"
	WorkflowExtend    = "Extend"
)

// desired is how many instances a service should have now: its target if an
// operator or an overload moved it, else its initial replicas.
func (m *manager) desired(s catalog.Service) int {
	if t := m.target(s.Name); t != nil {
		// Within the catalog's bounds, whatever a target carried from an
		// older catalog says.
		// At least the floor a schedule rule set.
		return min(max(t.Desired, s.Replicas.Min, t.Floor), s.Replicas.Max)
	}
	return s.Replicas.Initial
}

func (m *manager) target(service string) *Target {
	for i := range m.st.Targets {
		if m.st.Targets[i].Service == service {
			return &m.st.Targets[i]
		}
	}
	return nil
}

// setDesired records a service's new desired instances.
func (m *manager) setDesired(service string, n int) *Target {
	t := m.target(service)
	if t == nil {
		m.st.Targets = append(m.st.Targets, Target{Service: service})
		t = &m.st.Targets[len(m.st.Targets)-1]
	}
	t.Desired = n
	m.st.Pending = true
	return t
}

func (m *manager) knownService(name string) (*catalog.Service, error) {
	if m.st.Catalog == nil {
		return nil, errors.New("the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	}
	if name == "" {
		return nil, fmt.Errorf("no service named: give one of %v", m.serviceNames())
	}
	s := m.service(name)
	if s == nil {
		return nil, fmt.Errorf("unknown service %q: the catalog has %v", name, m.serviceNames())
	}
	return s, nil
}

func (m *manager) validateExtend(u ExtendUpdate) error {
	s, err := m.knownService(u.Service)
	if err != nil {
		return err
	}
	if u.Count <= 0 {
		return fmt.Errorf("count %d: extend adds at least 1 instance", u.Count)
	}
	if d := m.desired(*s); d >= s.Replicas.Max {
		return fmt.Errorf("%s already has its max of %d instance(s); raise replicas.max in the catalog to extend it", s.Name, s.Replicas.Max)
	}
	if m.room() <= 0 {
		return m.full()
	}
	return nil
}

// room is how many more containers the services' desired instances and the
// warm pool may ask for before the Manager holds fleet.MaxContainers.
func (m *manager) room() int {
	n := m.st.Catalog.Manager.PoolTotal()
	for _, s := range m.st.Catalog.Services {
		n += m.desired(s)
	}
	return fleet.MaxContainers - n
}

// full is the answer to a request for more containers than a Manager holds.
func (m *manager) full() error {
	return fmt.Errorf("the Manager already holds its most containers (%d, desired instances and warm pool); shrink another service, or run this service under a Manager of its own", fleet.MaxContainers)
}

// extendUpdate adds instances, never above max; the answer says when the
// request was capped.
func (m *manager) extendUpdate(ctx workflow.Context, u ExtendUpdate) (ProvisionAccepted, error) {
	// Validated, but a catalog taken in the same task may have changed it.
	if err := m.validateExtend(u); err != nil {
		return ProvisionAccepted{}, err
	}
	s := m.service(u.Service)
	from := m.desired(*s)
	// Compared with the room left, not added to from: a huge count would
	// overflow into a negative desired count.
	room := min(s.Replicas.Max-from, m.room())
	to := from + min(u.Count, room)
	m.extend(ctx, s.Name, from, to, TriggerOperator, "operator: "+reasonOr(u.Reason, "extend"), traceOf(ctx))
	msg := fmt.Sprintf("extending %s from %d to %d instance(s)", s.Name, from, to)
	if u.Count > room && to == s.Replicas.Max {
		msg += fmt.Sprintf(" (capped at its max of %d)", s.Replicas.Max)
	} else if u.Count > room {
		msg += fmt.Sprintf(" (capped: the Manager holds at most %d containers)", fleet.MaxContainers)
	}
	return ProvisionAccepted{Message: msg}, nil
}

func (m *manager) validateScale(u ScaleUpdate) error {
	s, err := m.knownService(u.Service)
	if err != nil {
		return err
	}
	if u.Replicas < s.Replicas.Min || u.Replicas > s.Replicas.Max {
		return fmt.Errorf("%d instance(s) of %s is outside its replicas %d..%d; pick a number in that range or change the catalog",
			u.Replicas, s.Name, s.Replicas.Min, s.Replicas.Max)
	}
	if t := m.target(s.Name); t != nil && u.Replicas < min(t.Floor, s.Replicas.Max) {
		return fmt.Errorf("%d instance(s) of %s is below its floor of %d, set by %s; scale to at least %d, or change that rule in the catalog (the next rule sets the next floor)",
			u.Replicas, s.Name, t.Floor, t.FloorBy, min(t.Floor, s.Replicas.Max))
	}
	if u.Replicas-m.desired(*s) > m.room() {
		return m.full()
	}
	return nil
}

// scaleUpdate sets a service's desired instances. Scaling up is an
// extension; scaling down waits for Shrink.
func (m *manager) scaleUpdate(ctx workflow.Context, u ScaleUpdate) (ProvisionAccepted, error) {
	if err := m.validateScale(u); err != nil {
		return ProvisionAccepted{}, err
	}
	s := m.service(u.Service)
	from := m.desired(*s)
	switch {
	case u.Replicas > from:
		m.extend(ctx, s.Name, from, u.Replicas, TriggerOperator, "operator: scale", traceOf(ctx))
	case u.Replicas < from:
		m.setDesired(s.Name, u.Replicas)
		m.record(ctx, Record{Kind: RecordShrink, Services: []string{s.Name}, Trigger: "operator: scale",
			Message: fmt.Sprintf("shrink %s from %d to %d instance(s)", s.Name, from, u.Replicas)})
	}
	return ProvisionAccepted{Message: fmt.Sprintf("scaling %s from %d to %d instance(s)", s.Name, from, u.Replicas)}, nil
}

// cooldown is how long a service's decisions keep further load reports
// from making new ones.
func (m *manager) cooldown(service string) time.Duration {
	if s := m.service(service); s != nil && s.Scaling.Cooldown > 0 {
		return s.Scaling.Cooldown
	}
	return DefaultCooldown
}

// extend moves a service's desired instances up and starts its cooldown.
// trigger is what asked (TriggerAgent …), why with its figures, trace its
// trace context ("" for none).
func (m *manager) extend(ctx workflow.Context, service string, from, to int, trigger, why, trace string) {
	t := m.setDesired(service, to)
	t.CooldownUntil = workflow.Now(ctx).Add(m.cooldown(service))
	t.Trigger, t.Why, t.From, t.Trace = trigger, fleet.Clip(why), from, fleet.Clip(trace)
	if !slices.Contains(m.st.Extending, service) {
		m.st.Extending = append(m.st.Extending, service)
	}
	m.record(ctx, Record{Kind: RecordExtend, Services: []string{service}, Trigger: why,
		Message: fmt.Sprintf("extend %s from %d to %d instance(s)", service, from, to)})
}

// onOverload extends the service by one instance, unless it is in its
// cooldown or at its max, or (signalBoundsChange) its extension is still
// under way: many reports at once make one decision, however long the
// extension takes.
func (m *manager) onOverload(ctx workflow.Context, o OverloadSignal) {
	s := m.service(o.Service)
	if s == nil {
		m.event(ctx, fmt.Sprintf("overload report for unknown service %q from %s ignored", o.Service, o.Container))
		return
	}
	from := m.desired(*s)
	t := m.target(s.Name)
	if (t != nil && workflow.Now(ctx).Before(t.CooldownUntil)) || from >= s.Replicas.Max || m.room() <= 0 ||
		(m.bounded && m.extending(s.Name)) {
		m.st.Suppressed[s.Name]++
		return
	}
	why := "overload reported by " + o.Container
	if o.Reason != "" {
		why += ": " + o.Reason
	}
	if n := m.st.Suppressed[s.Name]; n > 0 {
		why += fmt.Sprintf("; %d earlier report(s) fell in the cooldown or at max", n)
		delete(m.st.Suppressed, s.Name)
	}
	m.extend(ctx, s.Name, from, from+1, TriggerAgent, why, o.Trace)
}

func reasonOr(reason, def string) string {
	if reason == "" {
		return def
	}
	return reason
}

// onIdle shrinks the service by one instance, down to its initial replicas
// or its floor (an operator's scale can go lower, to the floor), unless it
// is in its cooldown.
func (m *manager) onIdle(ctx workflow.Context, o IdleSignal) {
	s := m.service(o.Service)
	if s == nil {
		return
	}
	from := m.desired(*s)
	t := m.target(s.Name)
	if from <= max(s.Replicas.Initial, m.floor(s.Name)) || (t != nil && workflow.Now(ctx).Before(t.CooldownUntil)) {
		return
	}
	t = m.setDesired(s.Name, from-1)
	t.CooldownUntil = workflow.Now(ctx).Add(m.cooldown(s.Name))
	why := "idle reported by " + o.Container
	if o.Reason != "" {
		why += ": " + o.Reason
	}
	m.record(ctx, Record{Kind: RecordShrink, Services: []string{s.Name}, Trigger: why,
		Message: fmt.Sprintf("shrink %s from %d to %d instance(s)", s.Name, from, from-1)})
}
