package catalog

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// Validate checks a defaulted catalog (see Default) and returns every
// problem found, nil if there are none. It does no I/O; the problems carry
// fields but no lines (Parse adds those).
func (c *Catalog) Validate() []Problem {
	return capProblems(c.validate(nil, nil))
}

// validate is Validate with a way to find the line of a field, so that a
// message about two fields (a duplicate name, overlapping ports) can point
// at the other one too, and a way to tell a field whose value could not be
// decoded (and so holds its default), so that a rule comparing two fields
// does not compare against a default the file never asked for.
func (c *Catalog) validate(lineOf func(field string) int, broken func(field string) bool) []Problem {
	v := validator{c: c, lineOf: lineOf, broken: broken}
	v.manager()
	v.servers()
	v.services()
	v.capacity()
	v.fleetSize()
	return v.ps
}

// MaxContainers is the most containers one Manager holds: its whole state
// travels through Temporal's continue-as-new, capped at 2 MB. A larger
// fleet is several Managers (cells), each with a catalog of its own.
const MaxContainers = 15000

// Containers is how many containers the catalog starts: every service's
// initial replicas and the warm pool.
func (c *Catalog) Containers() int {
	n := c.Manager.PoolTotal()
	for _, s := range c.Services {
		n += max(s.Replicas.Initial, 0)
	}
	return n
}

// fleetSize refuses a catalog whose initial instances and warm pool are
// more containers than one Manager holds.
func (v *validator) fleetSize() {
	if need := v.c.Containers(); need > MaxContainers {
		v.ps.add("services", "the catalog starts %d containers (replicas.initial of every service and warm_pool) but one Manager holds at most %d; split the services into several catalogs, each run by a Manager of its own", need, MaxContainers)
	}
}

type validator struct {
	c      *Catalog
	lineOf func(string) int
	broken func(string) bool
	ps     problems
}

// kinds lists the kinds of Manager msm knows, in the order docs name them.
var kinds = []string{KindStandalone, KindDocker, KindEC2, KindAzure, KindSimulated}

// processKind reports whether services run as processes started from
// Command: on every kind, the container agent starts its MicroService's
// program (on the docker kind, inside the container, from the msm image).
func processKind(kind string) bool {
	return slices.Contains(kinds, kind) && kind != KindSimulated
}

// listedKind reports whether the kind's servers are listed under
// manager.servers (standalone hosts, Docker engines) rather than launched.
func listedKind(kind string) bool {
	return kind == KindStandalone || kind == KindDocker
}

var (
	// A name goes into task queue names and container IDs, so it keeps to
	// the DNS label alphabet, which every provider also accepts.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// dockerName is what the engine accepts as a network name.
	dockerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const maxNameLen = 63

// where names a field for a message about another one, with its line when
// known.
func (v *validator) where(field string) string {
	if v.lineOf != nil {
		if l := v.lineOf(field); l > 0 {
			return fmt.Sprintf("%s (line %d)", field, l)
		}
	}
	return field
}

func (v *validator) manager() {
	m := v.c.Manager
	if !slices.Contains(kinds, m.Kind) {
		v.ps.add("manager.kind", "%q is not a kind of Manager; use one of %s", m.Kind, strings.Join(kinds, ", "))
	}
	if m.WarmPool < 0 {
		v.ps.add("manager.warm_pool", "%d is negative; set 0 for no warm pool, or how many waiting containers to keep ready", m.WarmPool)
	}
	v.imagePools()
	if m.ForgetAfter < m.Liveness {
		v.ps.add("manager.forget_after", "%s is shorter than manager.liveness (%s): a server is forgotten only once lost; set at least that, such as %q", m.ForgetAfter, m.Liveness, "10m")
	}
	if t := m.TaskTimeout; t != 0 && (t < time.Second || t > MaxTaskTimeout || t%time.Second != 0) {
		v.ps.add("manager.task_timeout", "%s is not a task timeout Temporal takes; set whole seconds from 1s to %s, such as %q (a worker taking the Manager over replays its run within it)", t, MaxTaskTimeout, DefaultTaskTimeout.String())
	}
	if m.OutageGrace != 0 && m.OutageGrace < m.Liveness {
		v.ps.add("manager.outage_grace", "%s is shorter than manager.liveness (%s): a node needs at least a window to lease again after an outage; set at least that, or leave it out for %s", m.OutageGrace, m.Liveness, OutageGraceFor(m.Liveness))
	}
	if m.Liveness < MinLiveness {
		v.ps.add("manager.liveness", "%s is too short to tell a lost server from a slow one; set at least %s, such as %q", m.Liveness, MinLiveness, "5s")
	}
	if m.Kind != KindSimulated && m.Simulated != (Simulated{}) {
		v.ps.add("manager.simulated", "manager.simulated is read by the simulated kind only; remove it, or set manager.kind: simulated")
	}
	if m.Placement != PlacementSpread && m.Placement != PlacementBinPack {
		v.ps.add("manager.placement", "%q is not a placement; use spread (the most free slots first) or binpack (the fewest that fit)", m.Placement)
	}
}

// name checks the name of a server or service; seen maps the names so far
// to the item that took them first.
func (v *validator) name(item, name, what, example string, seen map[string]string) {
	field := item + ".name"
	switch {
	case name == "":
		v.ps.add(field, "the %s has no name; give it one such as %q", what, example)
		return
	case len(name) > maxNameLen || !dnsLabel.MatchString(name):
		v.ps.add(field, "%q is not a valid %s name; use up to %d lowercase letters, digits and '-', starting and ending with a letter or digit (it becomes part of task queue names)", name, what, maxNameLen)
	}
	if first, ok := seen[name]; ok {
		v.ps.add(field, "%q is also the name of %s; give each %s its own name", name, v.where(first), what)
		return
	}
	seen[name] = item
}

func (v *validator) servers() {
	m := v.c.Manager
	if !listedKind(m.Kind) {
		if len(m.Servers) > 0 && slices.Contains(kinds, m.Kind) {
			v.ps.add("manager.servers", "the %s kind creates its own servers, and servers are read by the standalone and docker kinds only; remove manager.servers or set manager.kind: standalone", m.Kind)
		}
		if m.Kind == KindEC2 || m.Kind == KindAzure {
			v.launched()
		}
		if m.Kind == KindSimulated {
			v.simulated()
		}
		return
	}
	if m.Kind == KindDocker {
		v.docker()
	}
	if len(m.Servers) == 0 {
		what := "the hosts msm may run containers on"
		if m.Kind == KindDocker {
			what = "the Docker engines msm may run containers on (one named local, with no endpoint, is this machine's)"
		}
		v.ps.add("manager.servers", "the %s kind needs at least one server; list %s under manager.servers", m.Kind, what)
		return
	}
	if len(m.Servers) > MaxListedServers {
		v.ps.add("manager.servers", "the catalog lists %d servers, more than %d (a Manager holds at most %d containers); split them among several Managers", len(m.Servers), MaxListedServers, MaxContainers)
		return
	}
	seen := map[string]string{}
	for i, s := range m.Servers {
		item := fmt.Sprintf("manager.servers[%d]", i)
		v.name(item, s.Name, "server", "local-1", seen)
		if strings.TrimSpace(s.Address) == "" {
			v.ps.add(item+".address", "the server has no address; set the host name or IP address its node agent and services are reached at, e.g. \"127.0.0.1\"")
		}
		if s.Slots < 1 {
			v.ps.add(item+".slots", "%d is less than 1; set how many slots the server offers to containers, e.g. 4", s.Slots)
		}
		v.ports(item+".ports", s)
	}
	v.overlaps()
}

// launched checks the settings of the kinds that launch their servers
// (ec2, azure).
func (v *validator) launched() {
	m := v.c.Manager
	if m.Server.Slots < 1 {
		v.ps.add("manager.server.slots", "%d is less than 1; set how many slots each server the %s kind launches offers, e.g. 4", m.Server.Slots, m.Kind)
	}
	v.ports("manager.server.ports", Server{Slots: m.Server.Slots, Ports: m.Server.Ports})
	if m.MaxServers < 1 {
		v.ps.add("manager.max_servers", "%d is less than 1; set how many servers the %s kind may launch, e.g. 10", m.MaxServers, m.Kind)
	}
	v.nodeBoot("servers start `msm node`", "temporal.internal:7233")
	if m.Kind == KindEC2 {
		v.ec2()
	}
	if m.Kind == KindAzure {
		v.azure()
	}
}

// MaxSimulatedServers bounds manager.simulated.servers: a Manager holds at
// most fleet.MaxContainers containers, so more servers would stay empty.
const MaxSimulatedServers = 15000

// simulated checks the fleet the simulated kind offers.
func (v *validator) simulated() {
	m := v.c.Manager
	s := m.Simulated
	if s.Servers < 1 || s.Servers > MaxSimulatedServers {
		v.ps.add("manager.simulated.servers", "%d is not between 1 and %d; set how many servers the simulated kind may launch, e.g. 500", s.Servers, MaxSimulatedServers)
	}
	if s.Slots < 1 || s.Slots > 1000 {
		v.ps.add("manager.simulated.slots", "%d is not between 1 and 1000; set how many slots each simulated server offers, e.g. 20", s.Slots)
	}
	if s.StartDelay < 0 || s.StartDelay > time.Minute {
		v.ps.add("manager.simulated.start_delay", "%s is not between 0 and 1m; set how long a simulated container start takes, e.g. \"5ms\"", s.StartDelay)
	}
	if s.LoadDelay < 0 || s.LoadDelay > time.Minute {
		v.ps.add("manager.simulated.load_delay", "%s is not between 0 and 1m; set how long a simulated service load takes, e.g. \"5ms\"", s.LoadDelay)
	}
	if !m.Server.Ports.IsZero() || m.Server.Slots != 0 || m.MaxServers != 0 {
		v.ps.add("manager.server", "the simulated kind takes its servers from manager.simulated (servers, slots); remove manager.server and manager.max_servers")
	}
}

// nodeBoot checks how the kind's node agents reach Temporal.
func (v *validator) nodeBoot(who, example string) {
	m := v.c.Manager
	if strings.TrimSpace(m.Node.Temporal) == "" {
		v.ps.add("manager.node.temporal", "the %s kind's %s, which must reach Temporal; set the frontend address they dial, e.g. %q", m.Kind, who, example)
	} else if _, _, err := net.SplitHostPort(m.Node.Temporal); err != nil {
		v.ps.add("manager.node.temporal", "%q is not host:port; write it as %q", m.Node.Temporal, example)
	}
	if !strings.HasPrefix(m.Node.MSM, "/") {
		v.ps.add("manager.node.msm", "%q is not an absolute path; set where msm is on the server's image, e.g. %q", m.Node.MSM, DefaultMSM)
	}
}

// docker checks the settings of the docker kind; its engines are checked
// with the servers.
func (v *validator) docker() {
	m := v.c.Manager
	v.nodeBoot("node and container agents run in containers", "host.docker.internal:7233")
	if strings.TrimSpace(m.Docker.Image) == "" || strings.ContainsAny(m.Docker.Image, " \t\n") {
		v.ps.add("manager.docker.image", "%q is not an image reference; name the image holding msm and the services' programs, e.g. %q (`make image` builds it)", m.Docker.Image, DefaultDockerImage)
	}
	if n := m.Docker.Network; n != "" && !dockerName.MatchString(n) {
		v.ps.add("manager.docker.network", "%q is not a Docker network name; use letters, digits, '_', '.' and '-', e.g. \"msm\"", n)
	}
	if !strings.HasPrefix(m.Docker.Socket, "/") {
		v.ps.add("manager.docker.socket", "%q is not an absolute path; set where each engine's API socket is on its host, e.g. %q", m.Docker.Socket, DefaultDockerSocket)
	}
	for i, s := range m.Servers {
		item := fmt.Sprintf("manager.servers[%d]", i)
		e := strings.TrimSpace(s.Endpoint)
		switch {
		case e == "" || strings.HasPrefix(e, "unix:///"):
			if s.TLS != (EngineTLS{}) {
				v.ps.add(item+".tls", "TLS is for a tcp:// endpoint; remove tls, or set endpoint to the engine's tcp://host:2376")
			}
		case strings.HasPrefix(e, "tcp://"):
			if _, _, err := net.SplitHostPort(strings.TrimPrefix(e, "tcp://")); err != nil {
				v.ps.add(item+".endpoint", "%q is not tcp://host:port; write it as \"tcp://docker-2.internal:2376\"", s.Endpoint)
			}
			t := s.TLS
			if t != (EngineTLS{}) && (t.CA == "" || t.Cert == "" || t.Key == "") {
				v.ps.add(item+".tls", "set all of ca, cert and key (the files `docker --tlsverify` takes), or none")
			}
		default:
			v.ps.add(item+".endpoint", "%q is not a Docker engine endpoint; write unix:///var/run/docker.sock or tcp://host:2376, or leave it out for this machine's engine", s.Endpoint)
		}
	}
}

func (v *validator) azure() {
	a := v.c.Manager.Azure
	for _, f := range []struct{ field, value, eg string }{
		{"subscription", a.Subscription, "00000000-0000-0000-0000-000000000000"},
		{"resource_group", a.ResourceGroup, "msm-prod"},
		{"location", a.Location, "westeurope"},
	} {
		if strings.TrimSpace(f.value) == "" {
			v.ps.add("manager.azure."+f.field, "the azure kind needs %s; set it, e.g. %q", strings.ReplaceAll(f.field, "_", " "), f.eg)
		}
	}
	if !strings.HasPrefix(strings.ToLower(a.Subnet), "/subscriptions/") || !strings.Contains(strings.ToLower(a.Subnet), "/subnets/") {
		v.ps.add("manager.azure.subnet", "%q is not a subnet resource ID; write one such as \"/subscriptions/…/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/msm\"", a.Subnet)
	}
	if len(a.Sizes) == 0 {
		v.ps.add("manager.azure.sizes", "the azure kind needs at least one VM size (tried in order when one has no capacity), e.g. [Standard_D2s_v5]")
	}
	if _, err := ParseAzureImage(a.Image); err != nil {
		v.ps.add("manager.azure.image", "%v", err)
	}
	if a.SSHKey == "" {
		v.ps.add("manager.azure.ssh_public_key", "the azure kind creates Linux VMs without password login and needs the admin's public key, e.g. \"ssh-ed25519 AAAA… ops\"")
	}
}

func (v *validator) ec2() {
	e := v.c.Manager.EC2
	if e.Region == "" {
		v.ps.add("manager.ec2.region", "the ec2 kind needs a region; set it, e.g. \"eu-west-1\"")
	}
	switch {
	case e.AMI == "" && e.LaunchTemplate == "":
		v.ps.add("manager.ec2.ami", "the ec2 kind needs an image; set ami (\"ami-…\") or launch_template (\"lt-…\" or its name)")
	case e.AMI != "" && !strings.HasPrefix(e.AMI, "ami-"):
		v.ps.add("manager.ec2.ami", "%q is not an AMI ID; write one such as \"ami-0123456789abcdef0\"", e.AMI)
	}
	if len(e.InstanceTypes) == 0 && e.LaunchTemplate == "" {
		v.ps.add("manager.ec2.instance_types", "the ec2 kind needs at least one instance type (tried in order when one has no capacity), e.g. [c7g.large]")
	}
	for i, s := range e.Subnets {
		if !strings.HasPrefix(s, "subnet-") {
			v.ps.add(fmt.Sprintf("manager.ec2.subnets[%d]", i), "%q is not a subnet ID; write one such as \"subnet-0123abcd\"", s)
		}
	}
	for i, g := range e.SecurityGroups {
		if !strings.HasPrefix(g, "sg-") {
			v.ps.add(fmt.Sprintf("manager.ec2.security_groups[%d]", i), "%q is not a security group ID; write one such as \"sg-0123abcd\"", g)
		}
	}
}

// validPorts reports whether r is a usable range.
func validPorts(r PortRange) bool {
	return r.First >= MinPort && r.Last <= MaxPort && r.First <= r.Last
}

func (v *validator) ports(field string, s Server) {
	r := s.Ports
	switch {
	case r.IsZero():
		v.ps.add(field, "the server has no port range; set the ports its containers may use, e.g. \"21000-21099\"")
	case r.First < MinPort || r.First > MaxPort || r.Last < MinPort || r.Last > MaxPort:
		v.ps.add(field, "%s is outside %d-%d; keep both ends of the range within it", r, MinPort, MaxPort)
	case r.First > r.Last:
		v.ps.add(field, "first port %d is greater than last port %d; write the lower port first: \"%d-%d\"", r.First, r.Last, r.Last, r.First)
	case s.Slots >= 1 && r.Size() < s.Slots:
		v.ps.add(field, "%s holds %s for %d slots, and each container needs its own port; widen the range to at least %d ports or lower slots", r, plural(r.Size(), "port"), s.Slots, s.Slots)
	}
}

// overlaps reports servers on one address whose port ranges share ports:
// two containers there could be leased the same port. Each server is
// reported once, naming an earlier-listed server it overlaps; the servers
// of one address are sorted by their first port and swept, so a catalog
// of many servers costs n log n, not a message per pair.
func (v *validator) overlaps() {
	servers := v.c.Manager.Servers
	byAddress := map[string][]int{}
	var addresses []string
	for i, s := range servers {
		if !validPorts(s.Ports) || s.Address == "" {
			continue
		}
		a := normAddress(s.Address)
		if _, ok := byAddress[a]; !ok {
			addresses = append(addresses, a)
		}
		byAddress[a] = append(byAddress[a], i)
	}
	reported := map[int]bool{}
	for _, a := range addresses {
		idx := byAddress[a]
		slices.SortStableFunc(idx, func(x, y int) int { return servers[x].Ports.First - servers[y].Ports.First })
		widest := -1 // the server reaching furthest so far
		for _, j := range idx {
			if widest >= 0 {
				if x, ok := servers[widest].Ports.overlap(servers[j].Ports); ok {
					later, earlier := max(widest, j), min(widest, j)
					if !reported[later] {
						reported[later] = true
						v.overlap(later, earlier, x)
					}
				}
			}
			if widest < 0 || servers[j].Ports.Last > servers[widest].Ports.Last {
				widest = j
			}
		}
	}
}

// overlap reports that server j's ports x are also server i's.
func (v *validator) overlap(j, i int, x PortRange) {
	a, b := v.c.Manager.Servers[i], v.c.Manager.Servers[j]
	ports := fmt.Sprintf("ports %s are", x)
	if x.First == x.Last {
		ports = fmt.Sprintf("port %d is", x.First)
	}
	v.ps.add(fmt.Sprintf("manager.servers[%d].ports", j),
		"%s also in the range %s of server %q (%s) at the same address %s; give each server on one address its own ports",
		ports, a.Ports, a.Name, v.where(fmt.Sprintf("manager.servers[%d]", i)), strings.TrimSpace(b.Address))
}

// normAddress is the form in which server addresses are compared: the
// usual names of this machine count as one, since they reach the same
// ports.
func normAddress(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "localhost", "127.0.0.1", "::1", "[::1]":
		return "localhost"
	}
	return s
}

func (v *validator) services() {
	if len(v.c.Services) == 0 {
		v.ps.add("services", "the catalog has no services; list at least one MicroService under services")
		return
	}
	if n := len(v.c.Services); n > MaxServices {
		v.ps.add("services", "the catalog lists %d services, more than %d; split them among several Managers", n, MaxServices)
		return
	}
	seen := map[string]string{}
	for i, s := range v.c.Services {
		item := fmt.Sprintf("services[%d]", i)
		v.name(item, s.Name, "service", "web", seen)
		v.artifact(item, s)
		v.replicas(item+".replicas", s.Replicas)
		if s.Slots < 1 {
			v.ps.add(item+".slots", "%d is less than 1; set how many of a server's slots one instance uses, e.g. 1", s.Slots)
		}
		v.health(item+".health", s.Health)
		v.scaling(item+".scaling", s.Scaling)
		if s.Drain < 0 {
			v.ps.add(item+".drain", "%s is negative; set how long a removed instance keeps serving, such as \"1s\"", s.Drain)
		}
		v.templates(item, s)
		v.limits(item, s.Limits.Of())
		v.runAs(item, s.RunAs)
		v.update(item, s)
		v.schedules(item, s)
	}
	v.scheduleCount()
}

// schedules checks a service's schedule rules: a cron expression msm and
// Temporal read alike, a floor within the service's replicas, a time zone
// that exists.
func (v *validator) schedules(item string, s Service) {
	if len(s.Schedules) > MaxSchedulesPerService {
		v.ps.add(item+".schedules", "%s has %d schedule rules, more than %d; merge rules that set the same floor (one cron expression may list several hours: \"0 8,12 * * *\")", s.Name, len(s.Schedules), MaxSchedulesPerService)
		return
	}
	r := s.Replicas
	boundsKnown := validReplicas(r) && (v.broken == nil || !v.broken(item+".replicas"))
	for i, rule := range s.Schedules {
		field := fmt.Sprintf("%s.schedules[%d]", item, i)
		if msg := CheckCron(rule.Cron); msg != "" {
			v.ps.add(field+".cron", "%s", msg)
		}
		if msg := CheckTimezone(rule.Timezone); msg != "" {
			v.ps.add(field+".timezone", "%s", msg)
		}
		if boundsKnown && (rule.Min < r.Min || rule.Min > r.Max) {
			v.ps.add(field+".min", "min %d is outside the replicas %d..%d of %s; a scheduled floor lies within them: pick a number in that range, or change replicas", rule.Min, r.Min, r.Max, s.Name)
		}
	}
}

// scheduleCount bounds the catalog's schedule rules as a whole.
func (v *validator) scheduleCount() {
	n := 0
	for _, s := range v.c.Services {
		n += len(s.Schedules)
	}
	if n > MaxSchedules {
		v.ps.add("services", "the catalog has %d schedule rules, more than %d (each is a Temporal Schedule); merge rules, or split the services among several Managers", n, MaxSchedules)
	}
}

// runAs checks a service's run_as: a user name or a number, with a group
// number, never root's.
func (v *validator) runAs(item, s string) {
	if s == "" {
		return
	}
	user, group, hasGroup := strings.Cut(s, ":")
	if !validUser(user) || (hasGroup && !isNumber(group)) || !fits32(user) || !fits32(group) {
		v.ps.add(item+".run_as", "%q is not a user; write a user name (www-data), a number (1001) or a number with a group (1001:1001)", s)
		return
	}
	if user == "root" || strings.TrimLeft(user, "0") == "" || (hasGroup && strings.TrimLeft(group, "0") == "") {
		v.ps.add(item+".run_as", "%q is root; a MicroService never runs as root: name an unprivileged user, or leave run_as out (a user of its container's own)", s)
	}
}

// validUser: a POSIX-portable user name (letters, digits, '.', '_', '-',
// not starting with '-'; at most 32 bytes) or a number.
func validUser(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func isNumber(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// artifact checks that the service says what to run on this kind: a
// command, or on the docker kind an image of its own.
func (v *validator) artifact(item string, s Service) {
	kind := v.c.Manager.Kind
	switch {
	case kind == KindDocker && s.Image != "":
		if err := ValidImage(s.Image); err != nil {
			v.ps.add(item+".image", "%v", err)
		}
	case processKind(kind) && strings.TrimSpace(s.Command) == "" && kind == KindDocker:
		v.ps.add(item+".command", "the docker kind starts services as processes inside manager.docker.image and needs a command; set command to the program to run there, e.g. \"/usr/local/bin/demo\", or set image to the service's own image")
	case processKind(kind) && strings.TrimSpace(s.Command) == "":
		v.ps.add(item+".command", "the %s kind starts services as processes and needs a command; set command to the program to run, e.g. \"bin/demo\"", kind)
	}
	if s.Image != "" && kind != KindDocker {
		v.ps.add(item+".image", "only the docker kind runs a service's own image; the %s kind starts services as processes: remove image and set command to the program to run", kind)
	}
}

// imagePools checks warm_pool.images: the docker kind only, each an image
// a service names, each size 0 or more.
func (v *validator) imagePools() {
	m := v.c.Manager
	if len(m.WarmPoolImages) == 0 {
		return
	}
	if m.Kind != KindDocker {
		v.ps.add("manager.warm_pool.images", "only the docker kind runs services' own images; write warm_pool as a number on the %s kind", m.Kind)
		return
	}
	seen := map[string]bool{}
	for _, p := range m.WarmPoolImages {
		img := p.Image
		field := "manager.warm_pool.images." + img
		if seen[img] {
			v.ps.add(field, "image %q has two pools; give it one", img)
			continue
		}
		seen[img] = true
		if err := ValidImage(img); err != nil {
			v.ps.add(field, "%v", err)
			continue
		}
		if p.Size < 0 {
			v.ps.add(field, "%d is negative; set 0 or more waiting containers of %s", p.Size, img)
		}
		if !slices.ContainsFunc(v.c.Services, func(s Service) bool { return s.Image == img }) {
			v.ps.add(field, "no service names image %q, so its waiting containers would serve nothing; name it as a service's image exactly as written here, or remove it", img)
		}
	}
}

// ValidImage checks an image reference as the Docker engine reads it:
// name[:tag] or name@digest, lower case, e.g. "registry.example.com/web:1.2".
func ValidImage(ref string) error {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("%q is not an image reference (%v); write name[:tag] or name@digest in lower case, e.g. \"registry.example.com/web:1.2\"", ref, err)
	}
	return nil
}

func (v *validator) replicas(field string, r Replicas) {
	negative := false
	for _, f := range []struct {
		name string
		n    int
	}{{"min", r.Min}, {"initial", r.Initial}, {"max", r.Max}} {
		if f.n < 0 {
			v.ps.add(field+"."+f.name, "%s %d is negative; set 0 or more", f.name, f.n)
			negative = true
		}
	}
	switch {
	case negative:
	case r.Max < 1:
		v.ps.add(field+".max", "max %d allows no instances; set max to at least 1", r.Max)
	case r.Min > r.Max:
		v.ps.add(field, "min %d is greater than max %d; lower min or raise max", r.Min, r.Max)
	case r.Initial < r.Min:
		v.ps.add(field, "initial %d is less than min %d; raise initial or lower min", r.Initial, r.Min)
	case r.Initial > r.Max:
		v.ps.add(field, "initial %d is greater than max %d; lower initial or raise max", r.Initial, r.Max)
	case r.Max > MaxContainers:
		v.ps.add(field+".max", "max %d is more instances than one Manager holds (%d); lower it, or split the services among several Managers", r.Max, MaxContainers)
	}
}

// validReplicas reports whether r passes the replicas rules.
func validReplicas(r Replicas) bool {
	return r.Min >= 0 && r.Min <= r.Initial && r.Initial <= r.Max && r.Max >= 1 && r.Max <= MaxContainers
}

func (v *validator) health(field string, h HealthCheck) {
	if !strings.HasPrefix(h.Path, "/") {
		v.ps.add(field+".path", "%q does not start with \"/\"; write it as %q", h.Path, "/"+h.Path)
	}
	if h.Interval <= 0 {
		v.ps.add(field+".interval", "%s is not a positive duration; set one such as \"2s\"", h.Interval)
	}
	if h.Timeout <= 0 {
		v.ps.add(field+".timeout", "%s is not a positive duration; set one such as \"1s\"", h.Timeout)
	}
	if h.FailureThreshold < 1 {
		v.ps.add(field+".failure_threshold", "%d is less than 1; set how many failed checks in a row make an instance unhealthy, e.g. 3", h.FailureThreshold)
	}
}

func (v *validator) scaling(field string, sc Scaling) {
	if sc.Overload < 1 {
		v.ps.add(field+".overload", "%d is not a CPU percentage above 0; set one such as 80 (percent of one core)", sc.Overload)
	}
	if sc.Idle < 1 {
		v.ps.add(field+".idle", "%d is not a CPU percentage above 0; set one such as 10 (percent of one core)", sc.Idle)
	} else if sc.Idle >= sc.Overload && sc.Overload >= 1 && (v.broken == nil || !v.broken(field+".overload")) {
		v.ps.add(field+".idle", "%d is not below overload %d; an instance cannot be idle and overloaded at once: lower idle or raise overload", sc.Idle, sc.Overload)
	}
	if sc.Target < 0 {
		v.ps.add(field+".target", "%d is negative; set a CPU percentage per instance such as 60, or 0 to leave monitoring off", sc.Target)
	}
	if sc.InFlight < 0 {
		v.ps.add(field+".in_flight", "%d is negative; set how many requests in flight make an instance overloaded, or 0 to leave it off", sc.InFlight)
	}
	if sc.Metrics != "" && !strings.HasPrefix(sc.Metrics, "/") {
		v.ps.add(field+".metrics", "%q does not start with \"/\"; write it as %q", sc.Metrics, "/"+sc.Metrics)
	}
	if sc.Tolerance < 0 || sc.Tolerance >= 100 {
		v.ps.add(field+".tolerance", "%d is not a percentage from 0 to 99; set one such as 10", sc.Tolerance)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		eg   string
	}{{"window", sc.Window, "10s"}, {"stabilization", sc.Stabilization, "5m"}, {"cooldown", sc.Cooldown, "30s"}, {"sample", sc.Sample, "1s"}} {
		if d.v <= 0 {
			v.ps.add(field+"."+d.name, "%s is not a positive duration; set one such as %q", d.v, d.eg)
		}
	}
}

// sampleData stands in for a real container when templates are checked.
func sampleData(service string) TemplateData {
	return TemplateData{Port: 21000, Service: service, Container: "sample-1", Server: "sample", Address: "127.0.0.1"}
}

// templates checks that Command, Args and Env render, so that a typo shows
// up when the catalog is loaded rather than when a container starts.
func (v *validator) templates(item string, s Service) {
	d := sampleData(s.Name)
	if msg := checkTemplate(s.Command, d); msg != "" {
		v.ps.add(item+".command", "%s", msg)
	} else if s.Command != "" && processKind(v.c.Manager.Kind) {
		if out, _ := renderTemplate(s.Command, d); strings.TrimSpace(out) == "" {
			v.ps.add(item+".command", "%q renders to an empty command; make it name the program to run", s.Command)
		}
	}
	for i, a := range s.Args {
		if msg := checkTemplate(a, d); msg != "" {
			v.ps.add(fmt.Sprintf("%s.args[%d]", item, i), "%s", msg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		field := item + ".env." + k
		if !envName.MatchString(k) {
			v.ps.add(field, "%q is not a valid environment variable name; use letters, digits and '_', not starting with a digit", k)
		}
		if msg := checkTemplate(s.Env[k], d); msg != "" {
			v.ps.add(field, "%s", msg)
		}
	}
}

// capacity checks that a standalone catalog can start: the servers are
// fixed, so what the services start with (and the warm pool, one slot per
// waiting container) must fit in them.
func (v *validator) capacity() {
	m := v.c.Manager
	if !listedKind(m.Kind) {
		return
	}
	// A sum over numbers already reported wrong would only add a confusing
	// second message, so the sums skip them, or give up.
	total, largest, largestName := 0, 0, ""
	for _, s := range m.Servers {
		if s.Slots < 1 {
			return
		}
		total += s.Slots
		if s.Slots > largest {
			largest, largestName = s.Slots, s.Name
		}
	}
	if total == 0 {
		return // no servers: already reported
	}
	need := m.PoolTotal()
	var parts []string
	for i, s := range v.c.Services {
		if s.Slots < 1 {
			continue
		}
		if s.Slots > largest {
			v.ps.add(fmt.Sprintf("services[%d].slots", i), "one instance needs %d slots but the largest server, %q, has %d; lower slots or give a server more slots", s.Slots, largestName, largest)
		}
		if r := s.Replicas; r.Initial > 0 && validReplicas(r) {
			need += r.Initial * s.Slots
			parts = append(parts, fmt.Sprintf("%s %d×%d", s.Name, r.Initial, s.Slots))
		}
	}
	if n := m.PoolTotal(); n > 0 {
		parts = append(parts, fmt.Sprintf("warm pool %d", n))
	}
	if need > total {
		v.ps.add("manager.servers", "starting needs %d slots (%s) but the servers have %d; add a server, give servers more slots, or lower replicas.initial or warm_pool", need, strings.Join(parts, ", "), total)
	}
}

// plural writes "1 port", "2 ports".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// MinMemoryLimit is the least memory limit a service may set: below it
// even a small Go program cannot reserve its heap.
const MinMemoryLimit = 64 << 20

// MaxPidsLimit bounds limits.pids.
const MaxPidsLimit = 1 << 16

// limits checks a service's limits.
func (v *validator) limits(item string, l Limits) {
	if n, err := l.MemoryBytes(); err != nil {
		v.ps.add(item+".limits.memory", "%v", err)
	} else if n > 0 && n < MinMemoryLimit {
		v.ps.add(item+".limits.memory", "%s is below the least limit, 64Mi: a program cannot start in it (Go services need about 128Mi)", l.Memory)
	}
	if l.Pids < 0 || l.Pids > MaxPidsLimit {
		v.ps.add(item+".limits.pids", "%d is not between 1 and %d; set how many processes and threads one instance may have, e.g. 64", l.Pids, MaxPidsLimit)
	}
	if n, err := l.CPUMillis(); err != nil {
		v.ps.add(item+".limits.cpu", "%v", err)
	} else if n > 0 && n < MinCPULimit {
		v.ps.add(item+".limits.cpu", "%s is below the least limit, 10m (a hundredth of a CPU)", l.CPU)
	}
}

// MaxServices and MaxListedServers bound what one catalog lists (within
// MaxCatalogBytes, about 55 bytes a server at the least): a Manager holds
// at most MaxContainers containers.
const (
	MaxServices      = 5000
	MaxListedServers = 10000
)

// fits32: not a number, or a number of 32 bits (a uid or gid).
func fits32(s string) bool {
	if !isNumber(s) {
		return true
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
