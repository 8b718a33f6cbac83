package catalog

import "time"

// Defaults for fields a catalog may leave out.
const (
	DefaultKind             = KindStandalone
	DefaultServiceSlots     = 1
	DefaultHealthPath       = "/healthz"
	DefaultHealthInterval   = 2 * time.Second
	DefaultHealthTimeout    = 1 * time.Second
	DefaultFailureThreshold = 3

	DefaultOverload      = 80
	DefaultWindow        = 10 * time.Second
	DefaultIdle          = 10
	DefaultStabilization = 5 * time.Minute
	DefaultCooldown      = 30 * time.Second
	DefaultSample        = time.Second
	DefaultTolerance     = 10
	DefaultMetricsPath   = "/metrics"
	DefaultDrain         = time.Second
	DefaultLiveness      = 5 * time.Second
	DefaultTaskTimeout   = 2 * time.Second
	DefaultForgetAfter   = 10 * time.Minute
	DefaultMaxServers    = 10
	DefaultMSM           = "/usr/local/bin/msm"
	DefaultNamespace     = "default"
	DefaultAdminUser     = "msm"
	DefaultDockerImage   = "msm:dev"
	DefaultDockerSocket  = "/var/run/docker.sock"
)

// Default fills the fields left at their zero value. It is idempotent, and
// Parse calls it before Validate; a catalog built in code should call it too.
//
// Replicas: initial defaults to min, and max to the larger of initial and
// min. So a service that sets only "initial: 2" runs 2 and never scales, and
// one that sets nothing gets max 0, which Validate rejects: every service
// must say how far it may scale.
func (c *Catalog) Default() {
	if c.Manager.Kind == "" {
		c.Manager.Kind = DefaultKind
	}
	if c.Manager.Kind != KindStandalone && c.Manager.Kind != KindSimulated {
		if c.Manager.MaxServers == 0 {
			c.Manager.MaxServers = DefaultMaxServers
		}
		if c.Manager.Node.MSM == "" {
			c.Manager.Node.MSM = DefaultMSM
		}
		if c.Manager.Node.Namespace == "" {
			c.Manager.Node.Namespace = DefaultNamespace
		}
		if c.Manager.Kind == KindAzure && c.Manager.Azure.AdminUser == "" {
			c.Manager.Azure.AdminUser = DefaultAdminUser
		}
		if c.Manager.Kind == KindDocker {
			d := &c.Manager.Docker
			if d.Image == "" {
				d.Image = DefaultDockerImage
			}
			if d.Socket == "" {
				d.Socket = DefaultDockerSocket
			}
		}
	}
	if c.Manager.ForgetAfter == 0 {
		c.Manager.ForgetAfter = DefaultForgetAfter
	}
	if c.Manager.Liveness == 0 {
		c.Manager.Liveness = DefaultLiveness
	}
	if c.Manager.Placement == "" {
		c.Manager.Placement = PlacementSpread
	}
	for i := range c.Services {
		c.Services[i].defaults()
	}
}

func (s *Service) defaults() {
	if s.Slots == 0 {
		s.Slots = DefaultServiceSlots
	}
	h := &s.Health
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.FailureThreshold == 0 {
		h.FailureThreshold = DefaultFailureThreshold
	}
	if s.Drain == 0 {
		s.Drain = DefaultDrain
	}
	sc := &s.Scaling
	if sc.Overload == 0 {
		sc.Overload = DefaultOverload
	}
	if sc.Window == 0 {
		sc.Window = DefaultWindow
	}
	if sc.Idle == 0 {
		sc.Idle = DefaultIdle
	}
	if sc.Stabilization == 0 {
		sc.Stabilization = DefaultStabilization
	}
	if sc.Cooldown == 0 {
		sc.Cooldown = DefaultCooldown
	}
	if sc.Sample == 0 {
		sc.Sample = DefaultSample
	}
	if sc.Target > 0 && sc.Tolerance == 0 {
		sc.Tolerance = DefaultTolerance
	}
	if sc.InFlight > 0 && sc.Metrics == "" {
		sc.Metrics = DefaultMetricsPath
	}
	r := &s.Replicas
	if r.Initial == 0 {
		r.Initial = r.Min
	}
	if r.Max == 0 {
		r.Max = max(r.Initial, r.Min)
	}
}

// MaxTaskTimeout is the longest Manager task timeout: past a minute a dead
// worker stalls the Manager longer than any failover should.
const MaxTaskTimeout = time.Minute

// TaskTimeoutStep is how many containers add a second to the Manager's
// task timeout when the catalog sets none: a worker taking the Manager over
// replays its run, and a run carries its fleet (measured: 0.91 s for the
// largest run at 10,100 containers on a loaded 2-core machine, 3.6 s in a
// test binary built with -race beside other tests).
const TaskTimeoutStep = 2500

// ManagerTaskTimeout is the Manager's workflow task timeout when it holds
// containers: manager.task_timeout when set, else DefaultTaskTimeout and a
// second more per TaskTimeoutStep containers (10,000: 6 s), at most 10 s.
func (m Manager) ManagerTaskTimeout(containers int) time.Duration {
	if m.TaskTimeout > 0 {
		return m.TaskTimeout
	}
	return min(DefaultTaskTimeout+time.Duration(containers/TaskTimeoutStep)*time.Second, 10*time.Second)
}

// OutageGraceFor is manager.outage_grace when the catalog sets none: three
// liveness windows, and at least 30s, which covers a node's reconnection
// (its client retries a lost connection every 10s at most) with room.
func OutageGraceFor(liveness time.Duration) time.Duration {
	return max(3*liveness, 30*time.Second)
}

// MinLiveness is the shortest liveness window: a node heartbeats several
// times per window, and a shorter one would take a busy server for a lost one.
const MinLiveness = time.Second
