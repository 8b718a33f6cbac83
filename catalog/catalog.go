// Package catalog owns the list of MicroServices the whole service needs and
// the Manager settings that come with it: the schema, loading it from YAML
// with file:line errors, and validating it before anything is started.
//
// The types here travel inside workflow inputs and history, so they are plain
// data that round-trips through JSON.
package catalog

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Placement policies.
const (
	PlacementSpread  = "spread"
	PlacementBinPack = "binpack"
)

// Kinds of Manager: the provider the Manager runs on.
const (
	KindStandalone = "standalone"
	KindDocker     = "docker"
	KindEC2        = "ec2"
	KindAzure      = "azure"
	// KindSimulated keeps its servers and containers inside the worker
	// process: nothing is started, so a fleet of thousands fits on one
	// machine (manager.simulated). The Manager and its workflows are the
	// real ones; only the node's and the agents' activities are simulated.
	KindSimulated = "simulated"
)

// Catalog is one whole catalog file: the Manager section and the services.
type Catalog struct {
	Manager  Manager   `yaml:"manager" json:"manager"`
	Services []Service `yaml:"services" json:"services"`
}

// Manager holds the settings of the Manager itself.
type Manager struct {
	// Kind is the provider: standalone (default), docker, ec2, azure or
	// simulated.
	Kind string `yaml:"kind" json:"kind"`
	// WarmPool is how many waiting containers the Manager keeps ready (of
	// manager.docker.image on the docker kind). YAML writes it as a number,
	// or as {default: N, images: {IMAGE: n}} with WarmPoolImages.
	WarmPool int `yaml:"warm_pool" json:"warm_pool"`
	// WarmPoolImages is the docker kind's warm pool per service image: how
	// many waiting containers of each image the Manager keeps ready for the
	// services that name it (warm_pool.images), by image name. A list, not
	// a map, so that workflow code walks it in one order. Left out of JSON
	// when empty, so a catalog without it encodes as before.
	WarmPoolImages []Pool `yaml:"-" json:"warm_pool_images,omitempty"`
	// Placement is how a new container picks among the servers in use with
	// room: spread (default: the most free slots) or binpack (the fewest).
	Placement string `yaml:"placement" json:"placement,omitempty"`
	// Consolidate turns on the consolidation policy: when the servers in
	// use have room for every instance of the least-used one, that server
	// is drained (its instances rearranged onto the others) and released.
	Consolidate bool `yaml:"consolidate" json:"consolidate,omitempty"`
	// Liveness is how long a server's node agent may go unheard before the
	// server is lost: its instances are recovered on other servers, and its
	// containers are fenced (destroyed) when it comes back.
	Liveness time.Duration `yaml:"liveness" json:"liveness,omitempty"`
	// TaskTimeout is the Manager's workflow task timeout: how long a
	// worker that took one of the Manager's tasks and died holds it before
	// another worker takes it over. The worker taking over replays the
	// Manager's run within one task, so it must stay above that replay
	// (docs/operations.md has the figures). 0: it follows the fleet's size
	// (Manager.ManagerTaskTimeout).
	TaskTimeout time.Duration `yaml:"task_timeout" json:"task_timeout,omitempty"`
	// ForgetAfter is how long a server stays lost before the Manager
	// forgets it: its containers and their ports are released, it leaves
	// the status, and a launching kind's instance is terminated (room under
	// max_servers again). A node that comes back after is fenced.
	ForgetAfter time.Duration `yaml:"forget_after" json:"forget_after,omitempty"`
	// OutageGrace is how long the Manager waits for a server's node to
	// lease again when its lease timed out only because Temporal, or the
	// Manager itself, was away (the timeout came well past a window after
	// the node's last heartbeat), before it takes the server for lost.
	// Zero: the default, OutageGraceFor(Liveness).
	OutageGrace time.Duration `yaml:"outage_grace" json:"outage_grace,omitempty"`
	// Servers lists the hosts of the standalone kind, or the Docker engines
	// of the docker kind.
	Servers []Server `yaml:"servers" json:"servers,omitempty"`
	// Server is the shape of every server a kind that creates its servers
	// (ec2, azure) launches: its slots and its port range.
	Server ServerShape `yaml:"server" json:"server,omitzero"`
	// MaxServers caps how many servers such a kind launches.
	MaxServers int `yaml:"max_servers" json:"max_servers,omitempty"`
	// Node says how a launched server (or a Docker engine's node
	// container) starts its node agent.
	Node NodeBoot `yaml:"node" json:"node,omitzero"`
	// Docker configures the docker kind.
	Docker Docker `yaml:"docker" json:"docker,omitzero"`
	// EC2 configures the ec2 kind.
	EC2 EC2 `yaml:"ec2" json:"ec2,omitzero"`
	// Azure configures the azure kind.
	Azure Azure `yaml:"azure" json:"azure,omitzero"`
	// Simulated configures the simulated kind.
	Simulated Simulated `yaml:"simulated" json:"simulated,omitzero"`
}

// Simulated is the fleet the simulated kind offers: up to Servers servers
// of Slots slots each, launched as the Manager needs them, whose container
// starts and service loads take StartDelay and LoadDelay. Each server's
// ports are SimulatedPorts.First onwards, one per slot: nothing binds them.
type Simulated struct {
	Servers    int           `yaml:"servers" json:"servers"`
	Slots      int           `yaml:"slots" json:"slots"`
	StartDelay time.Duration `yaml:"start_delay" json:"start_delay,omitempty"`
	LoadDelay  time.Duration `yaml:"load_delay" json:"load_delay,omitempty"`
}

// SimulatedPorts is where the ports of a simulated server start.
const SimulatedPorts = 20000

// Pool is one warm pool: Size waiting containers of Image ("" the
// Manager's own).
type Pool struct {
	Image string `json:"image"`
	Size  int    `json:"size"`
}

// Pools are the warm pools the catalog asks for: the Manager's image's
// first, then those of WarmPoolImages.
func (m Manager) Pools() []Pool {
	return append([]Pool{{Size: m.WarmPool}}, m.WarmPoolImages...)
}

// PoolSize is the warm pool of image ("" the Manager's).
func (m Manager) PoolSize(image string) int {
	if image == "" {
		return m.WarmPool
	}
	for _, p := range m.WarmPoolImages {
		if p.Image == image {
			return p.Size
		}
	}
	return 0
}

// PoolTotal is every warm pool's size together.
func (m Manager) PoolTotal() int {
	n := 0
	for _, p := range m.Pools() {
		n += max(p.Size, 0)
	}
	return n
}

// Launches reports whether the kind launches its servers as it needs them
// (ec2, azure, simulated) rather than using those listed under servers.
func (m Manager) Launches() bool {
	return m.Kind == KindEC2 || m.Kind == KindAzure || m.Kind == KindSimulated
}

// LaunchShape is what each server the kind launches offers.
func (m Manager) LaunchShape() ServerShape {
	if m.Kind == KindSimulated {
		return ServerShape{Slots: m.Simulated.Slots, Ports: PortRange{First: SimulatedPorts, Last: SimulatedPorts + max(m.Simulated.Slots, 1) - 1}}
	}
	return m.Server
}

// LaunchMax is how many servers the kind may launch.
func (m Manager) LaunchMax() int {
	if m.Kind == KindSimulated {
		return m.Simulated.Servers
	}
	return m.MaxServers
}

// Azure is where and how the azure kind creates VMs. Sizes are tried in
// order, and zones in order within a size: one without capacity
// (AllocationFailed, SkuNotAvailable) makes the next be tried.
type Azure struct {
	Subscription  string `yaml:"subscription" json:"subscription,omitempty"`
	ResourceGroup string `yaml:"resource_group" json:"resource_group,omitempty"`
	Location      string `yaml:"location" json:"location,omitempty"`
	// Subnet is the resource ID of the subnet the VMs' NICs join.
	Subnet string   `yaml:"subnet" json:"subnet,omitempty"`
	Sizes  []string `yaml:"sizes" json:"sizes,omitempty"`
	Zones  []string `yaml:"zones" json:"zones,omitempty"`
	// Image is a marketplace image (publisher:offer:sku:version) or the
	// resource ID of an image or gallery image version.
	Image     string `yaml:"image" json:"image,omitempty"`
	AdminUser string `yaml:"admin_user" json:"admin_user,omitempty"`
	// SSHKey is the public key for AdminUser; password login is off.
	SSHKey string `yaml:"ssh_public_key" json:"ssh_public_key,omitempty"`
	// Endpoint overrides the Resource Manager endpoint (sovereign clouds;
	// tests).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
}

// ServerShape is what each launched server offers.
type ServerShape struct {
	Slots int       `yaml:"slots" json:"slots"`
	Ports PortRange `yaml:"ports" json:"ports"`
}

// NodeBoot is how a launched server starts `msm node`: its user data (EC2)
// or custom data (Azure) runs msm with these settings.
type NodeBoot struct {
	// Temporal is the frontend address the node dials (host:port).
	Temporal string `yaml:"temporal" json:"temporal"`
	// Namespace is the Temporal namespace (default "default").
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// MSM is the path of the msm binary on the server's image.
	MSM string `yaml:"msm" json:"msm,omitempty"`
	// TLS dials Temporal over TLS; CA is a CA bundle on the image, "" for
	// the system roots.
	TLS bool   `yaml:"tls" json:"tls,omitempty"`
	CA  string `yaml:"ca" json:"ca,omitempty"`
	// APIKeyFile is a file on the image holding the Temporal API key.
	APIKeyFile string `yaml:"api_key_file" json:"api_key_file,omitempty"`
}

// EC2 is where and how the ec2 kind launches instances. Instance types and
// subnets are tried in order: a type or subnet without capacity makes the
// next one be tried.
type EC2 struct {
	Region string `yaml:"region" json:"region,omitempty"`
	// Endpoint overrides the EC2 endpoint (a VPC endpoint; tests).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// AMI or LaunchTemplate (an lt-… ID or a name) gives the image.
	AMI            string   `yaml:"ami" json:"ami,omitempty"`
	LaunchTemplate string   `yaml:"launch_template" json:"launch_template,omitempty"`
	InstanceTypes  []string `yaml:"instance_types" json:"instance_types,omitempty"`
	Subnets        []string `yaml:"subnets" json:"subnets,omitempty"`
	SecurityGroups []string `yaml:"security_groups" json:"security_groups,omitempty"`
	KeyName        string   `yaml:"key_name" json:"key_name,omitempty"`
}

// Server is one standalone host, or one Docker engine of the docker kind.
type Server struct {
	Name string `yaml:"name" json:"name"`
	// Address is where the server's services are reached: the host, or
	// the host whose ports a Docker engine publishes on.
	Address string    `yaml:"address" json:"address"`
	Slots   int       `yaml:"slots" json:"slots"`
	Ports   PortRange `yaml:"ports" json:"ports"`
	// Endpoint is a Docker engine's API (docker kind): unix:///path or
	// tcp://host:port; "" is the engine msm's own environment names
	// (DOCKER_HOST, else the local socket).
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// TLS holds the client certificate files for a tcp:// endpoint.
	TLS EngineTLS `yaml:"tls" json:"tls,omitzero"`
}

// EngineTLS is how msm authenticates to a Docker engine over TCP: PEM
// files on the worker's host, as `docker --tlsverify` takes them.
type EngineTLS struct {
	CA   string `yaml:"ca" json:"ca,omitempty"`
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
}

// Docker is how the docker kind runs containers on its engines.
type Docker struct {
	// Image holds msm (at manager.node.msm) and the services' programs;
	// every node and container of the Manager runs from it.
	Image string `yaml:"image" json:"image,omitempty"`
	// Network is the bridge network the containers join on each engine,
	// created (and labelled) by msm if missing; default msm-<manager>.
	Network string `yaml:"network" json:"network,omitempty"`
	// Socket is the engine's API socket on each engine's host, mounted
	// into its node container (default /var/run/docker.sock).
	Socket string `yaml:"socket" json:"socket,omitempty"`
}

// PortRange is an inclusive range of ports, written "20000-20099" in YAML.
type PortRange struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// Service is one MicroService.
type Service struct {
	Name string `yaml:"name" json:"name"`
	// Command and Args start the service on process kinds (standalone, ec2,
	// azure). Both are Go templates over TemplateData, e.g. "--port={{.Port}}".
	Command string   `yaml:"command" json:"command,omitempty"`
	Args    []string `yaml:"args" json:"args,omitempty"`
	// Image, on the docker kind, is the service's own image: its instances
	// are containers of that image started for it or waiting in that
	// image's pool (never a waiting container of manager.docker.image),
	// pulled by the engine when
	// missing, with msm's agent copied in to run it. Without Command the
	// image's own entrypoint runs (Args, when set, replace its CMD, as in
	// `docker run IMAGE ARGS`). Other kinds refuse it: they run services
	// as processes.
	Image string `yaml:"image" json:"image,omitempty"`
	// Env values are templates over TemplateData too.
	Env      map[string]string `yaml:"env" json:"env,omitempty"`
	Health   HealthCheck       `yaml:"health" json:"health"`
	Replicas Replicas          `yaml:"replicas" json:"replicas"`
	// Slots is what one instance uses of its server's slots (default 1).
	Slots int `yaml:"slots" json:"slots"`
	// Drain is how long an instance being removed keeps serving before it
	// is unloaded or stopped, so requests in flight finish (default 1 s).
	Drain time.Duration `yaml:"drain" json:"drain"`
	// Scaling is when the container agent reports its instance overloaded
	// or idle, and how long the Manager waits between decisions.
	Scaling Scaling `yaml:"scaling" json:"scaling"`
	// Limits bound what one instance may use (see Limits); nil, none. A
	// pointer, so that a catalog without it encodes as before: the
	// Manager checks a catalog's tag over its JSON (workflows.CatalogSignal),
	// on replay too. A field added to the catalog must be left out of its
	// JSON when unset, for the same reason.
	Limits *Limits `yaml:"limits,omitempty" json:"limits,omitempty"`
	// RunAs is the user an instance runs as, by name or number
	// ("www-data", "1001", "1001:1001" with a group), instead of a user of
	// its container's own; never root. Its processes are then found by
	// their cgroup, not their user, so it needs a node on a cgroup v2 host.
	RunAs string `yaml:"run_as,omitempty" json:"run_as,omitempty"`
	// Update is how the service rolls to a new revision (see Update); nil
	// takes the defaults. A pointer, as Limits is.
	Update *Update `yaml:"update,omitempty" json:"update,omitempty"`
	// Schedules are the service's scheduled floors: each rule is a
	// Temporal Schedule (msm/<manager>/schedule/<service>/<n>) that, at
	// the times of its cron expression, sets the service's floor to Min.
	// Left out of the JSON when unset (see Limits).
	Schedules []ScheduleRule `yaml:"schedules,omitempty" json:"schedules,omitempty"`
}

// ScheduleRule sets a service's floor at the times of Cron: from then on
// the service runs at least Min instances (within replicas.max; overload
// may add more) until a rule sets another floor.
type ScheduleRule struct {
	// Cron is a standard five-field cron expression (minute, hour, day of
	// month, month, day of week), e.g. "0 8 * * 1-5".
	Cron string `yaml:"cron" json:"cron"`
	// Min is the floor, within the service's replicas min..max.
	Min int `yaml:"min" json:"min"`
	// Timezone is the IANA time zone Cron is read in ("Europe/Paris");
	// "" is UTC.
	Timezone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
}

// Limits bound one instance of a service. Where its agent runs as root,
// each instance runs as a user of its own (its container's); on a cgroup
// v2 host in a cgroup of its own too, where the kernel holds all three
// (memory.max, pids.max, cpu.max). Elsewhere memory and processes are
// held by the agent (it samples them) and rlimits, and cpu is not.
// Zero leaves a limit off.
type Limits struct {
	// Memory is a size such as "256Mi", "1Gi" or "500M".
	Memory string `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Pids bounds the processes and threads of the instance.
	Pids int `yaml:"pids,omitempty" json:"pids,omitempty"`
	// CPU is the CPU time the instance may use, in CPUs: "500m" (half of
	// one), "0.5", "2".
	CPU string `yaml:"cpu,omitempty" json:"cpu,omitempty"`
}

// MinCPULimit and MaxCPULimit bound limits.cpu, in thousandths of a CPU.
const (
	MinCPULimit = 10
	MaxCPULimit = 1024 * 1000
)

// CPUMillis is CPU in thousandths of a CPU, 0 when it is not set.
func (l Limits) CPUMillis() (int, error) {
	s := strings.TrimSpace(l.CPU)
	if s == "" {
		return 0, nil
	}
	bad := fmt.Errorf("%q is not a CPU amount; write it as 500m (half a CPU), 0.5 or 2", l.CPU)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.Atoi(m)
		if err != nil || n <= 0 || n > MaxCPULimit {
			return 0, bad
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > MaxCPULimit/1000 {
		return 0, bad
	}
	return max(1, int(math.Round(f*1000))), nil // a positive amount is a limit: below 10m, a problem
}

// Of returns the limits l points at, none when nil.
func (l *Limits) Of() Limits {
	if l == nil {
		return Limits{}
	}
	return *l
}

// MemoryBytes is Memory in bytes, 0 when it is not set.
func (l Limits) MemoryBytes() (int64, error) {
	if l.Memory == "" {
		return 0, nil
	}
	s := strings.TrimSpace(l.Memory)
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > (1<<50)/u.mult {
			return 0, fmt.Errorf("%q is not a size; write it as 256Mi, 1Gi or 500M", l.Memory)
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("%q is not a size; write it as 256Mi, 1Gi or 500M", l.Memory)
}

// Scaling is a service's load policy. Load is the CPU use of the service's
// process, in percent of one core, sampled by its container agent.
type Scaling struct {
	// Overload: an instance above it for Window is reported overloaded,
	// and the Manager extends the service by one.
	Overload int           `yaml:"overload" json:"overload"`
	Window   time.Duration `yaml:"window" json:"window"`
	// Idle: an instance below it for Stabilization is reported idle, and
	// the Manager shrinks the service by one, down to its initial replicas.
	Idle          int           `yaml:"idle" json:"idle"`
	Stabilization time.Duration `yaml:"stabilization" json:"stabilization"`
	// Cooldown is how long after a decision further reports for the
	// service make no new one.
	Cooldown time.Duration `yaml:"cooldown" json:"cooldown"`
	// Sample is how often the agent measures.
	Sample time.Duration `yaml:"sample" json:"sample"`
	// Target turns on monitoring in the Manager, as the Kubernetes HPA
	// does: from its nodes' usage reports, it keeps the service's average
	// CPU use per instance near Target (percent of one core), acting when
	// it is off by more than Tolerance percent. 0 (the default) is off.
	Target    int `yaml:"target" json:"target,omitempty"`
	Tolerance int `yaml:"tolerance" json:"tolerance,omitempty"`
	// InFlight, when set, also counts an instance as overloaded while more
	// requests than this are in flight, and idle only with none, as the
	// service reports at its Metrics path (JSON {"in_flight": n}; default
	// /metrics).
	InFlight int    `yaml:"in_flight" json:"in_flight,omitempty"`
	Metrics  string `yaml:"metrics" json:"metrics,omitempty"`
}

// HealthCheck is an HTTP check against the service's own port.
type HealthCheck struct {
	Path             string        `yaml:"path" json:"path"`
	Interval         time.Duration `yaml:"interval" json:"interval"`
	Timeout          time.Duration `yaml:"timeout" json:"timeout"`
	FailureThreshold int           `yaml:"failure_threshold" json:"failure_threshold"`
}

// Replicas bounds the instances of a service.
type Replicas struct {
	Min     int `yaml:"min" json:"min"`
	Initial int `yaml:"initial" json:"initial"`
	Max     int `yaml:"max" json:"max"`
}

// TemplateData is what Command, Args and Env templates may use.
type TemplateData struct {
	Port      int    // the leased port
	Service   string // the service name
	Container string // the container ID
	Server    string // the server name
	Address   string // the server's address
}

// AzureImage is a VM image: a marketplace reference, or an image's ID.
type AzureImage struct {
	Publisher, Offer, SKU, Version string
	ID                             string
}

// ParseAzureImage reads manager.azure.image: publisher:offer:sku:version
// or a resource ID (/subscriptions/…).
func ParseAzureImage(s string) (AzureImage, error) {
	if strings.HasPrefix(strings.ToLower(s), "/subscriptions/") {
		return AzureImage{ID: s}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 4 || slices.Contains(parts, "") {
		return AzureImage{}, fmt.Errorf("%q is not an image; write publisher:offer:sku:version, e.g. \"Canonical:ubuntu-24_04-lts:server:latest\", or an image resource ID", s)
	}
	return AzureImage{Publisher: parts[0], Offer: parts[1], SKU: parts[2], Version: parts[3]}, nil
}
