package workflows

import (
	"time"

	"github.com/msm-project/msm/fleet"
)

// Status is what `msm status -o json` prints (schema in docs/cli.md).
type Status struct {
	Manager string `json:"manager"`
	// Worker is the msm version of the worker that answered (with several
	// workers, of different versions during an upgrade, any of them).
	Worker     string            `json:"worker,omitempty"`
	Kind       string            `json:"kind"`
	Servers    []ServerStatus    `json:"servers"`
	Containers []ContainerStatus `json:"containers"`
	Services   []ServiceStatus   `json:"services"`
	// Unplaced is demand the last decision could not place, with the reason.
	Unplaced []fleet.Unplaced `json:"unplaced,omitempty"`
	// Events are the Manager's most recent decisions and outcomes.
	Events []Event `json:"events,omitempty"`
	// Operations counts the operations in flight.
	Operations int `json:"operations"`
	// RunSignals are the signals the Manager's current run has taken, and
	// SignalLimit the most it takes before it continues as new (none in
	// runs begun before the bound).
	RunSignals  int `json:"run_signals,omitempty"`
	SignalLimit int `json:"signal_limit,omitempty"`
	// CatalogSource is where the catalog in force came from; CatalogError
	// says why the last change of it was rejected (the one in force stays).
	CatalogSource string `json:"catalog_source,omitempty"`
	CatalogError  string `json:"catalog_error,omitempty"`
	// Reports is ReportsAuthenticated when the Manager checks the reports
	// of its worker, nodes, agents and operations, empty when it takes them
	// as they come (its worker has no key ring); Rejected counts those it
	// refused (the events say which and why).
	Reports  string `json:"reports,omitempty"`
	Rejected int    `json:"rejected_reports,omitempty"`
	// WarmPool is how many waiting containers the catalog in force asks
	// for, every pool together (the Manager's image's and, on the docker
	// kind, each service image's: the containers in state waiting are the
	// pool; a waiting container's Image says which).
	WarmPool int `json:"warm_pool"`
	// Counts are the Manager's counters since it began, Durations its
	// operations' durations by kind (its metrics).
	Counts    []Count     `json:"counts,omitempty"`
	Durations []Durations `json:"durations,omitempty"`
	// Ports are the port books of the servers in use.
	Ports []PortUse `json:"ports,omitempty"`
}

// PortUse is one server's port book in Status: the ports of its range,
// those the node found held by another process (never leased), and those
// leased to its containers.
type PortUse struct {
	Server  string `json:"server"`
	Range   int    `json:"range"`
	Blocked int    `json:"blocked,omitempty"`
	Leased  int    `json:"leased"`
}

// ServerStatus is one server in Status.
type ServerStatus struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Address string `json:"address"`
	Slots   int    `json:"slots"`
	Used    int    `json:"used"`
	// CPU (percent of all cores) and Memory (percent) from the node's
	// last usage report; absent before the first.
	CPU    int `json:"cpu,omitempty"`
	Memory int `json:"memory,omitempty"`
	// Node is the msm version its node agent runs, as it last said;
	// absent until it does (and for a node of wire 1, which says none).
	Node string `json:"node,omitempty"`
	// UnheardUntil is set while its lease timed out only because Temporal,
	// or the Manager, was away: the Manager waits until then for its node
	// to lease again before it takes the server for lost.
	UnheardUntil *time.Time `json:"unheard_until,omitempty"`
}

// ContainerStatus is one container in Status.
type ContainerStatus struct {
	ID      string `json:"id"`
	Server  string `json:"server"`
	State   string `json:"state"`
	Service string `json:"service"`
	Port    int    `json:"port"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
	// Image is the service's own image the container runs (docker kind);
	// "" for the Manager's.
	Image string `json:"image,omitempty"`
	// CPU is the container's CPU use (percent of one core) over the
	// node's last report period.
	CPU int `json:"cpu,omitempty"`
	// Agent is the msm version of its container agent (its node's when it
	// started it); absent when not known.
	Agent string `json:"agent,omitempty"`
}

// ServiceStatus is one catalog service in Status.
type ServiceStatus struct {
	Name    string `json:"name"`
	Desired int    `json:"desired"`
	Ready   int    `json:"ready"`
	// Floor is the least instances a schedule rule set (0: none).
	Floor int `json:"floor,omitempty"`
	// Failures, LastError and RetryAt are set while the service is in
	// crash-loop back-off: no new container is tried before RetryAt.
	Failures  int        `json:"failures,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	RetryAt   *time.Time `json:"retry_at,omitempty"`
	// Rollout is its last roll to a new revision, if any.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// Count returns how many of the status's containers are in state.
func (st Status) Count(state string) int {
	n := 0
	for _, c := range st.Containers {
		if c.State == state {
			n++
		}
	}
	return n
}

// Settled reports whether no operation is in flight, every service is at
// its desired replicas, and warm containers wait.
func (st Status) Settled(warm int) bool {
	if len(st.Services) == 0 || st.Operations > 0 {
		return false
	}
	for _, s := range st.Services {
		if s.Ready != s.Desired {
			return false
		}
	}
	return st.Count("waiting") == warm
}
