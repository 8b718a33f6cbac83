// Package agentapi is what a container agent and the Manager's workflows
// agree on: the agent's task queue, the activities it serves and their
// types, the signals it sends. It imports nothing of Temporal, so that the
// lean agent (msm-agent, internal/wire) links no Temporal SDK; package
// workflows names each of these under the same name.
package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/trust"
)

// ContainerQueue is the task queue of one container's agent.
func ContainerQueue(container string) string { return "msm-container-" + container }

// ManagerID is the workflow ID of a Manager's entity workflow.
func ManagerID(manager string) string { return "msm/" + manager }

// Wire is the version of the contract between a Manager's workers, its
// nodes and its agents: the signals, activity inputs and results, and the
// records of this package and of workflows. It goes up when a message
// changes in a way a peer of the version before would misread; a field
// added with omitempty, which an older peer ignores and a newer one reads
// as absent, does not change it, and every version reads the messages of
// the one before (workflows/testdata/wire/, TestWireContract*).
//   - 1: before versions were reported (a message without a wire is 1).
//   - 2: a node tells its msm version and wire in its Reconcile result.
const Wire = 2

// Signals an agent sends its Manager.
const (
	SignalOverload = "overload" // OverloadSignal: an agent's service is overloaded
	SignalIdle     = "idle"     // IdleSignal: an agent's service is idle
	// SignalErrorReport (ErrorReport): a container's MicroService exited or
	// failed its health checks.
	SignalErrorReport = "error-report"
)

// basicEnv are the variables of an environment that any program expects
// to find (PATH, its home and user, its shell, locale and time zone, a
// temporary directory, the terminal) and the documented MSM_ names of a
// container; the locale's LC_ variables go with them (BasicEnv).
var basicEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
	"MSM_MANAGER", "MSM_CONTAINER", "MSM_SERVER"}

// BasicEnv is what a process msm starts inherits of env: its basics and
// LC_ variables, in env's order. A node gives its agents these and their
// Temporal settings; an agent gives its MicroService these and the
// catalog's env.
func BasicEnv(env []string) []string {
	out := make([]string, 0, len(basicEnv))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(basicEnv, name) || strings.HasPrefix(name, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}

// KeyFDEnv names the file descriptor a node hands an agent its
// container's key on (a pipe, read once and closed): an environment
// variable or a file would stay readable to the MicroService the agent
// starts.
const KeyFDEnv = "MSM_AGENT_KEY_FD"

// KeyEnv holds the same lines as the pipe, where a node cannot hand its
// agent a pipe (the docker kind's agents run in containers of their own);
// the agent removes it from its environment at once.
const KeyEnv = "MSM_AGENT_KEYS"

// CgroupEnv names the environment variable a node gives each agent the
// directory of its container's cgroup (v2) in, when the node confines with
// cgroups: the agent makes its MicroService's cgroup, service, there.
const CgroupEnv = "MSM_CGROUP"

// ImageEnv names the environment variable a docker node gives the agent
// of a container of a service's own image: that image's command and
// environment (ImageCommand, as JSON), which the agent runs when the
// catalog names no command for the service.
const ImageEnv = "MSM_IMAGE"

// ImageCommand is what an image runs by itself (its config's Entrypoint,
// Cmd and Env, as `docker image inspect` shows them).
type ImageCommand struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
}

// Argv is what a service with no command of its own runs in a container
// of its image: the image's entrypoint followed by args, or by its Cmd
// when args are none (as `docker run IMAGE ARGS...` does).
func (ic ImageCommand) Argv(args []string) []string {
	if len(args) == 0 {
		args = ic.Cmd
	}
	return append(slices.Clone(ic.Entrypoint), args...)
}

// ServiceUIDBase is the first of the users MicroServices run as when
// their agent runs as root: a container's MicroService runs as
// ServiceUIDBase + a 30-bit hash of its Manager and container ID, a user
// of its own, so that nothing it does reaches its agent, its node or
// another container, and every process it leaves is found by its user.
// Two of the containers on one host share a user with odds of about n²/2³¹
// (n = 1,000 containers: 1 in 2,000).
const ServiceUIDBase = 1 << 30

// ServiceUID is the user the MicroService of a container of manager runs
// as.
func ServiceUID(manager, container string) uint32 {
	h := uint32(2166136261) // FNV-1a
	for _, s := range []string{manager, "/", container} {
		for j := 0; j < len(s); j++ {
			h = (h ^ uint32(s[j])) * 16777619
		}
	}
	return ServiceUIDBase + h%(1<<30)
}

// KeyLines is what a node writes on that pipe: "container <key>" (when
// reports are authenticated) and "codec <key>" for each codec key, the
// current first, each key as trust.Key.Encode writes it.
func KeyLines(container trust.Key, codec []trust.Key) string {
	var b strings.Builder
	if container.Valid() {
		b.WriteString("container " + container.Encode() + "\n")
	}
	for _, k := range codec {
		b.WriteString("codec " + k.Encode() + "\n")
	}
	return b.String()
}

// ParseKeyLines reads what KeyLines wrote.
func ParseKeyLines(s string) (container trust.Key, codec []trust.Key, err error) {
	for i, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		what, rest, _ := strings.Cut(line, " ")
		k, err := trust.ParseKey(rest)
		if err != nil {
			return trust.Key{}, nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		switch what {
		case "container":
			container = k
		case "codec":
			codec = append(codec, k)
		default:
			return trust.Key{}, nil, fmt.Errorf("line %d: a key line starts with container or codec, not %q", i+1, what)
		}
	}
	return container, codec, nil
}

// Activities an agent serves on its container's queue.
const (
	ActivityLoadService   = "LoadService"   // LoadServiceInput → LoadServiceResult
	ActivityReady         = "Ready"         // container ID → ReadyResult
	ActivityUnloadService = "UnloadService" // container ID
)

// Error types of the non-retryable errors an agent returns.
const (
	ErrPortInUse  = "PortInUse"
	ErrLoadFailed = "LoadFailed"
)

// ErrorReport is sent by a container agent whose MicroService failed.
type ErrorReport struct {
	Container string `json:"container"`
	Service   string `json:"service"`
	Reason    string `json:"reason"`
	// Cause is the failure in one word (CauseExit …), the cause label of
	// the Manager's recoveries; Reason says it with the figures.
	Cause string `json:"cause,omitempty"`
	// Auth is the report's tag (internal/trust) under the key of the
	// container's agent or of its server's node; see Signed.
	Auth string `json:"auth,omitempty"`
}

// Causes of a failure an ErrorReport names.
const (
	CauseExit      = "exit"       // the MicroService exited
	CauseHealth    = "health"     // it failed its health checks
	CauseLimit     = "limit"      // it went past its limits and was killed
	CauseAgentExit = "agent_exit" // its container's agent ended (the node saw it)
	CauseAgentHung = "agent_hung" // its agent stopped touching its heartbeat file (internal/heartbeat): the node killed it
)

// Fields are what an ErrorReport's tag covers (the cause when there is
// one: a report without, from an older agent, keeps its tag).
func (r ErrorReport) Fields() []string {
	f := []string{SignalErrorReport, r.Container, r.Service, r.Reason}
	if r.Cause != "" {
		f = append(f, r.Cause)
	}
	return f
}

// OverloadSignal is sent by a container agent whose service stayed above
// its load threshold for the policy window. Reports inside a service's
// cooldown make no further decision.
type OverloadSignal struct {
	Container string `json:"container"`
	Service   string `json:"service"`
	Reason    string `json:"reason,omitempty"`
	// Trace is the W3C trace context (traceparent) of the agent's span of
	// the report, when it traces: the extension decided on it joins its
	// trace.
	Trace string `json:"trace,omitempty"`
	Auth  string `json:"auth,omitempty"` // tag under the container's key
}

// Fields are what an OverloadSignal's tag covers (the trace context when
// there is one: a report without keeps its tag).
func (o OverloadSignal) Fields() []string {
	f := []string{SignalOverload, o.Container, o.Service, o.Reason}
	if o.Trace != "" {
		f = append(f, o.Trace)
	}
	return f
}

// IdleSignal is sent by a container agent whose service stayed below its
// idle threshold for the stabilization window.
type IdleSignal struct {
	Container string `json:"container"`
	Service   string `json:"service"`
	Reason    string `json:"reason,omitempty"`
	Auth      string `json:"auth,omitempty"` // tag under the container's key
}

// Fields are what an IdleSignal's tag covers.
func (o IdleSignal) Fields() []string {
	return []string{SignalIdle, o.Container, o.Service, o.Reason}
}

// Sign returns the tag of a report's fields under k, for its Auth; a key
// that is not Valid (reports are not authenticated) gives "".
func Sign(k trust.Key, fields []string) string {
	if !k.Valid() {
		return ""
	}
	return trust.Sign(k, fields...)
}

// LoadServiceInput tells a container which MicroService to load and where.
type LoadServiceInput struct {
	Container string          `json:"container"`
	Server    string          `json:"server"`
	Address   string          `json:"address"`
	Port      int             `json:"port"`
	Service   catalog.Service `json:"service"`
}

// LoadServiceResult is a loaded, healthy service.
type LoadServiceResult struct {
	PID      int           `json:"pid"`
	Healthy  bool          `json:"healthy"`
	Took     time.Duration `json:"took"`
	Attached bool          `json:"attached"` // it was already loaded
}

// ReadyResult is a container agent's answer to Ready.
type ReadyResult struct {
	PID int `json:"pid"`
}

// ReportsEnv names the file a node gives each agent it starts for its
// load reports, when the node passes them on (one summary per node and
// period, instead of one signal per report): the agent writes its last
// overload or idle report there (WriteReport) instead of signalling the
// Manager, and the node takes it (TakeReport). An agent without it, or
// an older agent, signals the Manager itself.
const ReportsEnv = "MSM_AGENT_REPORTS"

// Report is an agent's overload or idle report, as it leaves it for its
// node.
type Report struct {
	// Kind is SignalOverload or SignalIdle.
	Kind      string `json:"kind"`
	Container string `json:"container"`
	Service   string `json:"service"`
	Reason    string `json:"reason,omitempty"`
	// Trace is the W3C trace context of the agent's span of the report.
	Trace string `json:"trace,omitempty"`
	// Auth is the agent's tag of Fields under its container's key: the
	// node passes on only what its agent signed (a MicroService that can
	// write the file cannot sign).
	Auth string `json:"auth,omitempty"`
}

// Fields are what a Report's tag covers.
func (r Report) Fields() []string {
	return []string{"report", r.Kind, r.Container, r.Service, r.Reason, r.Trace}
}

// WriteReport leaves r at path for the node, in place of the report left
// there before and not taken yet (the last one says the most): written
// beside it and renamed, so the node never reads half of one.
func WriteReport(path string, r Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the report for the node, %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the report for the node, %w", err)
	}
	return nil
}

// TakeReport takes the report left at path, if there is one (ok false
// when none): it is renamed away first, so a report written meanwhile
// stays for the next take.
func TakeReport(path string) (r Report, ok bool, err error) {
	taken := path + ".taken"
	if err := os.Rename(path, taken); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Report{}, false, nil
		}
		return Report{}, false, err
	}
	b, err := os.ReadFile(taken)
	_ = os.Remove(taken)
	if err != nil {
		return Report{}, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Report{}, false, fmt.Errorf("reading the report at %s, %w", path, err)
	}
	return r, true, nil
}
