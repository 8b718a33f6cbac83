package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validCatalog is a small standalone catalog with no problems; each case
// below breaks one thing in a copy of it.
func validCatalog() *Catalog {
	c := &Catalog{
		Manager: Manager{
			Kind:     KindStandalone,
			WarmPool: 1,
			Servers: []Server{
				{Name: "local-1", Address: "127.0.0.1", Slots: 4, Ports: PortRange{21000, 21099}},
				{Name: "local-2", Address: "127.0.0.1", Slots: 4, Ports: PortRange{21100, 21199}},
			},
		},
		Services: []Service{
			{Name: "web", Command: "bin/demo", Args: []string{"--port={{.Port}}"}, Replicas: Replicas{Min: 1, Initial: 2, Max: 4}},
			{Name: "api", Command: "bin/demo", Env: map[string]string{"NAME": "{{.Service}}"}, Replicas: Replicas{Min: 1, Max: 2}},
		},
	}
	c.Default()
	return c
}

// want is one expected problem: the exact field and a part of the message.
type want struct {
	field, msg string
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Catalog)
		want   []want
	}{
		{
			name:   "valid",
			modify: func(*Catalog) {},
		},
		// manager
		{
			name:   "unknown kind",
			modify: func(c *Catalog) { c.Manager.Kind = "k8s" },
			want:   []want{{"manager.kind", `"k8s" is not a kind of Manager; use one of standalone, docker, ec2, azure, simulated`}},
		},
		{
			name:   "negative warm pool",
			modify: func(c *Catalog) { c.Manager.WarmPool = -1 },
			want:   []want{{"manager.warm_pool", "-1 is negative; set 0 for no warm pool"}},
		},
		{
			name:   "liveness too short",
			modify: func(c *Catalog) { c.Manager.Liveness = 200 * time.Millisecond },
			want:   []want{{"manager.liveness", "200ms is too short to tell a lost server from a slow one; set at least 1s"}},
		},
		{
			name:   "outage_grace shorter than liveness",
			modify: func(c *Catalog) { c.Manager.OutageGrace, c.Manager.Liveness = 3*time.Second, 5*time.Second },
			want:   []want{{"manager.outage_grace", "3s is shorter than manager.liveness (5s): a node needs at least a window to lease again after an outage; set at least that, or leave it out for 30s"}},
		},
		{
			name:   "forget_after shorter than liveness",
			modify: func(c *Catalog) { c.Manager.ForgetAfter, c.Manager.Liveness = 3*time.Second, 5*time.Second },
			want:   []want{{"manager.forget_after", "3s is shorter than manager.liveness (5s): a server is forgotten only once lost; set at least that"}},
		},
		{
			name:   "liveness of a second is fine",
			modify: func(c *Catalog) { c.Manager.Liveness = time.Second },
		},
		{
			name:   "zero warm pool is fine",
			modify: func(c *Catalog) { c.Manager.WarmPool = 0 },
		},
		// servers
		{
			name:   "standalone without servers",
			modify: func(c *Catalog) { c.Manager.Servers = nil },
			want:   []want{{"manager.servers", "the standalone kind needs at least one server; list the hosts"}},
		},
		{
			name: "servers on another kind",
			modify: func(c *Catalog) {
				c.Manager.Kind = KindEC2
				c.Manager.Server = ServerShape{Slots: 4, Ports: PortRange{20000, 20099}}
				c.Manager.MaxServers, c.Manager.Node = 3, NodeBoot{Temporal: "temporal:7233", MSM: DefaultMSM}
				c.Manager.EC2 = EC2{Region: "eu-west-1", AMI: "ami-1", InstanceTypes: []string{"c7i.large"}}
			},
			want: []want{{"manager.servers", "the ec2 kind creates its own servers, and servers are read by the standalone and docker kinds only; remove manager.servers or set manager.kind: standalone"}},
		},
		{
			name: "simulated kind, complete",
			modify: func(c *Catalog) {
				c.Manager.Kind, c.Manager.Servers = KindSimulated, nil
				c.Manager.Simulated = Simulated{Servers: 500, Slots: 20, StartDelay: 5 * time.Millisecond}
				c.Services[0].Command, c.Services[1].Command = "", ""
			},
		},
		{
			name: "simulated kind, nothing set and a server shape",
			modify: func(c *Catalog) {
				c.Manager.Kind = KindSimulated
				c.Manager.Server = ServerShape{Slots: 4}
				c.Manager.Simulated.LoadDelay = -time.Second
			},
			want: []want{
				{"manager.servers", "the simulated kind creates its own servers"},
				{"manager.simulated.servers", "0 is not between 1 and 15000; set how many servers the simulated kind may launch"},
				{"manager.simulated.slots", "0 is not between 1 and 1000"},
				{"manager.simulated.load_delay", "-1s is not between 0 and 1m"},
				{"manager.server", "the simulated kind takes its servers from manager.simulated"},
			},
		},
		{
			name:   "simulated settings on another kind",
			modify: func(c *Catalog) { c.Manager.Simulated.Servers = 3 },
			want:   []want{{"manager.simulated", "manager.simulated is read by the simulated kind only"}},
		},
		{
			name: "ec2 kind, complete",
			modify: func(c *Catalog) {
				c.Manager.Kind, c.Manager.Servers = KindEC2, nil
				c.Manager.Server = ServerShape{Slots: 4, Ports: PortRange{20000, 20099}}
				c.Manager.MaxServers, c.Manager.Node = 3, NodeBoot{Temporal: "temporal:7233", MSM: DefaultMSM}
				c.Manager.EC2 = EC2{Region: "eu-west-1", AMI: "ami-0123", InstanceTypes: []string{"c7g.large"},
					Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}}
			},
		},
		{
			name: "ec2 kind, nothing set",
			modify: func(c *Catalog) {
				c.Manager.Kind, c.Manager.Servers = KindEC2, nil
				c.Manager.EC2 = EC2{Subnets: []string{"sn-1"}, SecurityGroups: []string{"default"}}
			},
			want: []want{
				{"manager.server.slots", "0 is less than 1; set how many slots each server the ec2 kind launches offers"},
				{"manager.server.ports", "the server has no port range"},
				{"manager.max_servers", "0 is less than 1"},
				{"manager.node.temporal", "the ec2 kind's servers start `msm node`, which must reach Temporal"},
				{"manager.node.msm", `"" is not an absolute path`},
				{"manager.ec2.region", "the ec2 kind needs a region"},
				{"manager.ec2.ami", "the ec2 kind needs an image; set ami"},
				{"manager.ec2.instance_types", "the ec2 kind needs at least one instance type"},
				{"manager.ec2.subnets[0]", `"sn-1" is not a subnet ID`},
				{"manager.ec2.security_groups[0]", `"default" is not a security group ID`},
			},
		},
		{
			name: "azure kind, nothing set",
			modify: func(c *Catalog) {
				c.Manager.Kind, c.Manager.Servers = KindAzure, nil
				c.Manager.Server = ServerShape{Slots: 4, Ports: PortRange{20000, 20099}}
				c.Manager.MaxServers, c.Manager.Node = 3, NodeBoot{Temporal: "temporal:7233", MSM: DefaultMSM}
				c.Manager.Azure = Azure{Subnet: "subnet-1", Image: "Canonical:ubuntu"}
			},
			want: []want{
				{"manager.azure.subscription", "the azure kind needs subscription"},
				{"manager.azure.resource_group", "the azure kind needs resource group"},
				{"manager.azure.location", "the azure kind needs location"},
				{"manager.azure.subnet", `"subnet-1" is not a subnet resource ID`},
				{"manager.azure.sizes", "the azure kind needs at least one VM size"},
				{"manager.azure.image", `"Canonical:ubuntu" is not an image; write publisher:offer:sku:version`},
				{"manager.azure.ssh_public_key", "needs the admin's public key"},
			},
		},
		{
			name: "azure kind, complete",
			modify: func(c *Catalog) {
				c.Manager.Kind, c.Manager.Servers = KindAzure, nil
				c.Manager.Server = ServerShape{Slots: 4, Ports: PortRange{20000, 20099}}
				c.Manager.MaxServers, c.Manager.Node = 3, NodeBoot{Temporal: "temporal:7233", MSM: DefaultMSM}
				c.Manager.Azure = testAzure()
			},
		},
		{
			name:   "server without name",
			modify: func(c *Catalog) { c.Manager.Servers[1].Name = "" },
			want:   []want{{"manager.servers[1].name", `the server has no name; give it one such as "local-1"`}},
		},
		{
			name:   "server name not a DNS label",
			modify: func(c *Catalog) { c.Manager.Servers[0].Name = "Local_1" },
			want:   []want{{"manager.servers[0].name", `"Local_1" is not a valid server name; use up to 63 lowercase letters, digits and '-'`}},
		},
		{
			name:   "server name ends in a dash",
			modify: func(c *Catalog) { c.Manager.Servers[0].Name = "local-" },
			want:   []want{{"manager.servers[0].name", `"local-" is not a valid server name`}},
		},
		{
			name: "server name too long",
			modify: func(c *Catalog) {
				c.Manager.Servers[0].Name = "a123456789012345678901234567890123456789012345678901234567890123"
			},
			want: []want{{"manager.servers[0].name", "is not a valid server name"}},
		},
		{
			name:   "duplicate server name",
			modify: func(c *Catalog) { c.Manager.Servers[1].Name = "local-1" },
			want:   []want{{"manager.servers[1].name", `"local-1" is also the name of manager.servers[0]; give each server its own name`}},
		},
		{
			name:   "server without address",
			modify: func(c *Catalog) { c.Manager.Servers[0].Address = " " },
			want:   []want{{"manager.servers[0].address", "the server has no address; set the host name or IP address"}},
		},
		{
			name:   "server without slots",
			modify: func(c *Catalog) { c.Manager.Servers[0].Slots = 0; c.Manager.Servers[1].Slots = 5 },
			want:   []want{{"manager.servers[0].slots", "0 is less than 1; set how many slots the server offers"}},
		},
		{
			name:   "server without ports",
			modify: func(c *Catalog) { c.Manager.Servers[0].Ports = PortRange{} },
			want:   []want{{"manager.servers[0].ports", `the server has no port range; set the ports its containers may use, e.g. "21000-21099"`}},
		},
		{
			name:   "port zero",
			modify: func(c *Catalog) { c.Manager.Servers[0].Ports = PortRange{0, 10} },
			want:   []want{{"manager.servers[0].ports", "0-10 is outside 1-65535; keep both ends of the range within it"}},
		},
		{
			name:   "port above 65535",
			modify: func(c *Catalog) { c.Manager.Servers[0].Ports = PortRange{65530, 65540} },
			want:   []want{{"manager.servers[0].ports", "65530-65540 is outside 1-65535"}},
		},
		{
			name:   "reversed ports",
			modify: func(c *Catalog) { c.Manager.Servers[0].Ports = PortRange{21099, 21000} },
			want:   []want{{"manager.servers[0].ports", `first port 21099 is greater than last port 21000; write the lower port first: "21000-21099"`}},
		},
		{
			name:   "fewer ports than slots",
			modify: func(c *Catalog) { c.Manager.Servers[0].Ports = PortRange{21000, 21002} },
			want:   []want{{"manager.servers[0].ports", "21000-21002 holds 3 ports for 4 slots, and each container needs its own port; widen the range to at least 4 ports or lower slots"}},
		},
		{
			name:   "overlapping ports on one address",
			modify: func(c *Catalog) { c.Manager.Servers[1].Ports = PortRange{21050, 21149} },
			want:   []want{{"manager.servers[1].ports", `ports 21050-21099 are also in the range 21000-21099 of server "local-1" (manager.servers[0]) at the same address 127.0.0.1; give each server on one address its own ports`}},
		},
		{
			name: "one shared port, localhost and 127.0.0.1 are one address",
			modify: func(c *Catalog) {
				c.Manager.Servers[1].Address = "localhost"
				c.Manager.Servers[1].Ports = PortRange{21099, 21199}
			},
			want: []want{{"manager.servers[1].ports", `port 21099 is also in the range 21000-21099 of server "local-1"`}},
		},
		{
			name: "overlapping ports on different addresses are fine",
			modify: func(c *Catalog) {
				c.Manager.Servers[1].Address = "10.0.0.2"
				c.Manager.Servers[1].Ports = PortRange{21000, 21099}
			},
		},
		// services
		{
			name:   "no services",
			modify: func(c *Catalog) { c.Services = nil },
			want:   []want{{"services", "the catalog has no services; list at least one MicroService under services"}},
		},
		{
			name:   "service without name",
			modify: func(c *Catalog) { c.Services[0].Name = "" },
			want:   []want{{"services[0].name", `the service has no name; give it one such as "web"`}},
		},
		{
			name:   "service name with a dot",
			modify: func(c *Catalog) { c.Services[1].Name = "api.v2" },
			want:   []want{{"services[1].name", `"api.v2" is not a valid service name`}},
		},
		{
			name:   "duplicate service name",
			modify: func(c *Catalog) { c.Services[1].Name = "web" },
			want:   []want{{"services[1].name", `"web" is also the name of services[0]; give each service its own name`}},
		},
		{
			name:   "process kind without command",
			modify: func(c *Catalog) { c.Services[1].Command = "" },
			want:   []want{{"services[1].command", `the standalone kind starts services as processes and needs a command; set command to the program to run`}},
		},
		{
			name: "azure kind without command",
			modify: func(c *Catalog) {
				c.Manager.Kind = KindAzure
				c.Manager.Servers = nil
				c.Manager.Server = ServerShape{Slots: 4, Ports: PortRange{20000, 20099}}
				c.Manager.MaxServers, c.Manager.Node = 3, NodeBoot{Temporal: "temporal:7233", MSM: DefaultMSM}
				c.Manager.Azure = testAzure()
				c.Services[0].Command = ""
			},
			want: []want{{"services[0].command", "the azure kind starts services as processes and needs a command"}},
		},
		{
			name:   "docker kind, complete",
			modify: dockerKind,
		},
		{
			name: "docker kind: a service with its own image needs no command",
			modify: func(c *Catalog) {
				dockerKind(c)
				c.Services[0].Image = "ghcr.io/acme/web:1"
				c.Services[0].Command = ""
				c.Services[1].Image = "localhost:5000/api@sha256:" + strings.Repeat("ab", 32)
			},
		},
		{
			name: "docker kind: an image reference the engine would refuse",
			modify: func(c *Catalog) {
				dockerKind(c)
				c.Services[0].Image = "Acme/Web:1"
				c.Services[0].Command = ""
				c.Services[1].Image = "web:1 2"
			},
			want: []want{
				{"services[0].image", `"Acme/Web:1" is not an image reference (invalid reference format: repository name (Web) must be lowercase); write name[:tag] or name@digest in lower case`},
				{"services[1].image", `"web:1 2" is not an image reference (invalid reference format)`},
			},
		},
		{
			name: "standalone kind refuses a service's image",
			modify: func(c *Catalog) {
				c.Services[0].Image = "ghcr.io/acme/web:1"
			},
			want: []want{{"services[0].image", "only the docker kind runs a service's own image; the standalone kind starts services as processes: remove image and set command"}},
		},
		{
			name: "docker kind needs a command and the node settings",
			modify: func(c *Catalog) {
				dockerKind(c)
				c.Manager.Node.Temporal = ""
				c.Manager.Docker.Image = ""
				c.Services[1].Command = ""
			},
			want: []want{
				{"manager.node.temporal", "the docker kind's node and container agents run in containers, which must reach Temporal"},
				{"manager.docker.image", `"" is not an image reference`},
				{"services[1].command", "the docker kind starts services as processes inside manager.docker.image and needs a command; set command to the program to run there, e.g. \"/usr/local/bin/demo\", or set image to the service's own image"},
			},
		},
		{
			name: "docker kind without engines",
			modify: func(c *Catalog) {
				dockerKind(c)
				c.Manager.Servers = nil
			},
			want: []want{{"manager.servers", "the docker kind needs at least one server; list the Docker engines"}},
		},
		{
			name: "docker engine endpoints and TLS",
			modify: func(c *Catalog) {
				dockerKind(c)
				c.Manager.Docker.Network = "no spaces"
				c.Manager.Servers[0].Endpoint = "http://docker:2375"
				c.Manager.Servers[1].Endpoint = "tcp://docker-2:2376"
				c.Manager.Servers[1].TLS = EngineTLS{CA: "ca.pem"}
			},
			want: []want{
				{"manager.docker.network", `"no spaces" is not a Docker network name`},
				{"manager.servers[0].endpoint", `"http://docker:2375" is not a Docker engine endpoint`},
				{"manager.servers[1].tls", "set all of ca, cert and key"},
			},
		},
		{
			name:   "command renders empty",
			modify: func(c *Catalog) { c.Services[0].Command = "{{if false}}x{{end}}" },
			want:   []want{{"services[0].command", `"{{if false}}x{{end}}" renders to an empty command`}},
		},
		// replicas
		{
			name:   "min greater than max",
			modify: func(c *Catalog) { c.Services[1].Replicas = Replicas{Min: 3, Initial: 3, Max: 2} },
			want:   []want{{"services[1].replicas", "min 3 is greater than max 2; lower min or raise max"}},
		},
		{
			name:   "initial below min",
			modify: func(c *Catalog) { c.Services[0].Replicas = Replicas{Min: 2, Initial: 1, Max: 4} },
			want:   []want{{"services[0].replicas", "initial 1 is less than min 2; raise initial or lower min"}},
		},
		{
			name:   "initial above max",
			modify: func(c *Catalog) { c.Services[0].Replicas = Replicas{Min: 1, Initial: 5, Max: 4} },
			want:   []want{{"services[0].replicas", "initial 5 is greater than max 4; lower initial or raise max"}},
		},
		{
			name:   "max zero",
			modify: func(c *Catalog) { c.Services[0].Replicas = Replicas{} },
			want:   []want{{"services[0].replicas.max", "max 0 allows no instances; set max to at least 1"}},
		},
		{
			name:   "negative replicas",
			modify: func(c *Catalog) { c.Services[0].Replicas = Replicas{Min: -1, Initial: 1, Max: -2} },
			want: []want{
				{"services[0].replicas.min", "min -1 is negative; set 0 or more"},
				{"services[0].replicas.max", "max -2 is negative; set 0 or more"},
			},
		},
		{
			name:   "min zero is fine",
			modify: func(c *Catalog) { c.Services[0].Replicas = Replicas{Min: 0, Initial: 0, Max: 3} },
		},
		{
			name:   "negative service slots",
			modify: func(c *Catalog) { c.Services[0].Slots = -1 },
			want:   []want{{"services[0].slots", "-1 is less than 1; set how many of a server's slots one instance uses"}},
		},
		// health
		{
			name:   "health path without slash",
			modify: func(c *Catalog) { c.Services[0].Health.Path = "healthz" },
			want:   []want{{"services[0].health.path", `"healthz" does not start with "/"; write it as "/healthz"`}},
		},
		{
			name:   "negative interval",
			modify: func(c *Catalog) { c.Services[0].Health.Interval = -time.Second },
			want:   []want{{"services[0].health.interval", `-1s is not a positive duration; set one such as "2s"`}},
		},
		{
			name:   "negative timeout",
			modify: func(c *Catalog) { c.Services[0].Health.Timeout = -time.Second },
			want:   []want{{"services[0].health.timeout", `-1s is not a positive duration; set one such as "1s"`}},
		},
		{
			name:   "failure threshold below 1",
			modify: func(c *Catalog) { c.Services[0].Health.FailureThreshold = -3 },
			want:   []want{{"services[0].health.failure_threshold", "-3 is less than 1; set how many failed checks in a row make an instance unhealthy"}},
		},
		// templates
		{
			name:   "unknown field in command",
			modify: func(c *Catalog) { c.Services[0].Command = "bin/{{.Prot}}" },
			want:   []want{{"services[0].command", "unknown template field .Prot; use one of .Port, .Service, .Container, .Server, .Address"}},
		},
		{
			name:   "unknown field in an arg",
			modify: func(c *Catalog) { c.Services[0].Args = []string{"--name={{.Service}}", "--port={{.Prot}}"} },
			want:   []want{{"services[0].args[1]", "unknown template field .Prot"}},
		},
		{
			name:   "template syntax error in an arg",
			modify: func(c *Catalog) { c.Services[0].Args = []string{"--port={{.Port}"} },
			want:   []want{{"services[0].args[0]", "invalid template: "}},
		},
		{
			name:   "unknown function in env",
			modify: func(c *Catalog) { c.Services[1].Env = map[string]string{"NAME": "{{upper .Service}}"} },
			want:   []want{{"services[1].env.NAME", `invalid template: function "upper" not defined; fix the {{ }} syntax`}},
		},
		{
			name:   "template failing on execution",
			modify: func(c *Catalog) { c.Services[1].Env = map[string]string{"NAME": "{{index .Service 99}}"} },
			want:   []want{{"services[1].env.NAME", "template fails on sample data ("}},
		},
		{
			name:   "bad env name",
			modify: func(c *Catalog) { c.Services[1].Env = map[string]string{"1X": "v", "A-B": "v", "OK_1": "v"} },
			want: []want{
				{"services[1].env.1X", `"1X" is not a valid environment variable name`},
				{"services[1].env.A-B", `"A-B" is not a valid environment variable name`},
			},
		},
		// capacity
		{
			name: "initial instances do not fit",
			modify: func(c *Catalog) {
				c.Manager.WarmPool = 3
				c.Services[0].Replicas = Replicas{Min: 1, Initial: 6, Max: 8}
			},
			want: []want{{"manager.servers", "starting needs 10 slots (web 6×1, api 1×1, warm pool 3) but the servers have 8; add a server, give servers more slots, or lower replicas.initial or warm_pool"}},
		},
		{
			name: "more containers than one Manager holds",
			modify: func(c *Catalog) {
				c.Manager.Servers[0].Slots = 20000
				c.Manager.Servers[0].Ports = PortRange{First: 30000, Last: 50000}
				c.Services[0].Replicas = Replicas{Min: 1, Initial: MaxContainers, Max: MaxContainers}
			},
			want: []want{{"services", "the catalog starts 15002 containers (replicas.initial of every service and warm_pool) but one Manager holds at most 15000; split the services into several catalogs, each run by a Manager of its own"}},
		},
		{
			name: "exactly full fits",
			modify: func(c *Catalog) {
				c.Manager.WarmPool = 2
				c.Services[0].Replicas = Replicas{Min: 1, Initial: 5, Max: 8}
			},
		},
		{
			name:   "one instance larger than any server",
			modify: func(c *Catalog) { c.Services[1].Slots = 5; c.Services[1].Replicas = Replicas{Min: 0, Max: 1} },
			want:   []want{{"services[1].slots", `one instance needs 5 slots but the largest server, "local-1", has 4; lower slots or give a server more slots`}},
		},
		// several at once
		{
			name: "several problems, all reported in order",
			modify: func(c *Catalog) {
				c.Manager.WarmPool = -2
				c.Manager.Servers[1].Name = "local-1"
				c.Services[0].Command = ""
				c.Services[1].Health.Path = "ready"
			},
			want: []want{
				{"manager.warm_pool", "-2 is negative"},
				{"manager.servers[1].name", `"local-1" is also the name of manager.servers[0]`},
				{"services[0].command", "needs a command"},
				{"services[1].health.path", `write it as "/ready"`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validCatalog()
			tc.modify(c)
			got := c.Validate()
			require.Len(t, got, len(tc.want), "problems: %v", got)
			for i, w := range tc.want {
				assert.Equal(t, w.field, got[i].Field)
				assert.Contains(t, got[i].Message, w.msg)
				assert.Zero(t, got[i].Line, "Validate knows no lines")
				assert.Empty(t, got[i].File)
			}
		})
	}
}

// Every message says what to do, after a semicolon, so a reader never gets
// a bare "invalid".
func TestValidateMessagesSayWhatToDo(t *testing.T) {
	c := &Catalog{
		Manager: Manager{Kind: KindStandalone, WarmPool: -1, Servers: []Server{
			{Name: "A", Slots: 0, Ports: PortRange{9, 1}},
			{Name: "A", Address: "h", Slots: 1, Ports: PortRange{0, 1}},
		}},
		Services: []Service{
			{Name: "x_y", Command: "{{.Nope}}", Args: []string{"{{"}, Env: map[string]string{"9": "{{.X}}"}, Replicas: Replicas{Min: 2, Max: 1}, Slots: -1,
				Health:  HealthCheck{Path: "p", Interval: -1, Timeout: -1, FailureThreshold: -1},
				Scaling: Scaling{Overload: -1, Window: -1, Idle: -1, Stabilization: -1, Cooldown: -1, Sample: -1}},
			{Name: "x_y", Replicas: Replicas{Min: -1}, Scaling: Scaling{Overload: 10, Window: 1, Idle: 20, Stabilization: 1, Cooldown: 1, Sample: 1}},
		},
	}
	got := c.Validate()
	require.GreaterOrEqual(t, len(got), 22)
	for _, p := range got {
		assert.Contains(t, p.Message, "; ", "%s: %s", p.Field, p.Message)
		assert.NotEmpty(t, p.Field)
	}
}

// dockerKind turns the test catalog into a complete docker-kind one.
func dockerKind(c *Catalog) {
	c.Manager.Kind = KindDocker
	c.Manager.Node = NodeBoot{Temporal: "host.docker.internal:7233", MSM: DefaultMSM}
	c.Manager.Docker = Docker{Image: DefaultDockerImage, Socket: DefaultDockerSocket}
}

func testAzure() Azure {
	return Azure{Subscription: "sub", ResourceGroup: "rg", Location: "westeurope",
		Subnet: "/subscriptions/sub/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
		Sizes:  []string{"Standard_D2s_v5"}, Image: "Canonical:ubuntu-24_04-lts:server:latest", SSHKey: "ssh-ed25519 AAAA ops"}
}

// TestValidateIsRepeatable: the Manager validates every catalog it receives
// inside its workflow, where the same input must give the same output on
// every replay. A catalog with problems everywhere (env keys, templates,
// servers that overlap) gives the same problems in the same order each time.
func TestValidateIsRepeatable(t *testing.T) {
	c := validCatalog()
	c.Manager.Servers = append(c.Manager.Servers, Server{Name: "local-3", Address: "127.0.0.1", Slots: 0, Ports: PortRange{21050, 21150}})
	env := map[string]string{}
	for _, k := range []string{"B", "A", "1BAD", "C", "bad-name", "D", "E", "F"} {
		env[k] = "{{.Nope}}"
	}
	c.Services[0].Env = env
	c.Services[1].Args = []string{"{{.Port", "{{range .Args}}{{end}}"}
	c.Services = append(c.Services, Service{Name: "web", Command: "{{if}}", Replicas: Replicas{Min: 3, Max: 1}})
	first := c.Validate()
	require.Greater(t, len(first), 10, "the catalog has problems everywhere: %v", first)
	for range 50 {
		require.Equal(t, first, c.Validate())
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		limits Limits
		bytes  int64
		want   string // a problem's message part, "" for none
	}{
		{Limits{}, 0, ""},
		{Limits{Memory: "256Mi", Pids: 64}, 256 << 20, ""},
		{Limits{Memory: "1Gi"}, 1 << 30, ""},
		{Limits{Memory: "500M"}, 500_000_000, ""},
		{Limits{Memory: "134217728"}, 128 << 20, ""},
		{Limits{Memory: "1Mi"}, 1 << 20, "below the least limit, 64Mi"},
		{Limits{Memory: "lots"}, 0, `"lots" is not a size`},
		{Limits{Memory: "-5Mi"}, 0, "is not a size"},
		{Limits{Pids: -1}, 0, "is not between 1 and 65536"},
		{Limits{Pids: 1 << 20}, 0, "is not between 1 and 65536"},
		{Limits{CPU: "500m"}, 0, ""},
		{Limits{CPU: "0.25"}, 0, ""},
		{Limits{CPU: "2"}, 0, ""},
		{Limits{CPU: "5m"}, 0, "below the least limit, 10m"},
		{Limits{CPU: "0.0004"}, 0, "below the least limit, 10m"},
		{Limits{CPU: "-1"}, 0, `"-1" is not a CPU amount`},
		{Limits{CPU: "NaN"}, 0, "is not a CPU amount"},
		{Limits{CPU: "lots"}, 0, "is not a CPU amount"},
		{Limits{CPU: "1e9"}, 0, "is not a CPU amount"},
	} {
		c := validCatalog()
		c.Services[0].Limits = &tc.limits
		ps := c.Validate()
		if tc.want == "" {
			assert.Empty(t, ps, "%+v", tc.limits)
			n, err := tc.limits.MemoryBytes()
			require.NoError(t, err)
			assert.Equal(t, tc.bytes, n)
			continue
		}
		require.Len(t, ps, 1, "%+v", tc.limits)
		assert.Contains(t, ps[0].Message, tc.want)
	}
}

func TestCPUMillis(t *testing.T) {
	for in, want := range map[string]int{"": 0, "500m": 500, "0.25": 250, "2": 2000, " 1.5 ": 1500, "10m": 10, "0.0004": 1} {
		got, err := Limits{CPU: in}.CPUMillis()
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestRunAs(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"www-data":              "",
		"1001":                  "",
		"1001:1001":             "",
		"svc.user_1":            "",
		"root":                  "is root",
		"0":                     "is root",
		"000":                   "is root",
		"1001:0":                "is root",
		"-x":                    "is not a user",
		"a b":                   "is not a user",
		"1001:staff":            "is not a user",
		"4294967296":            "is not a user",
		"a:b:c":                 "is not a user",
		"$(reboot)":             "is not a user",
		strings.Repeat("u", 33): "is not a user",
	} {
		c := validCatalog()
		c.Services[0].RunAs = in
		ps := c.Validate()
		if want == "" {
			assert.Empty(t, ps, in)
			continue
		}
		require.Len(t, ps, 1, in)
		assert.Equal(t, "services[0].run_as", ps[0].Field, in)
		assert.Contains(t, ps[0].Message, want, in)
	}
}

// TestWarmPoolPerImage: warm_pool is a number, or a mapping of the
// Manager's image's pool (default) and one pool per service image; each
// image must be one a service names, on the docker kind.
func TestWarmPoolPerImage(t *testing.T) {
	head := `manager:
  kind: docker
  node: {temporal: "host.docker.internal:7233"}
  servers: [{name: local, address: 127.0.0.1, slots: 8, ports: 21200-21299}]
`
	svcs := `services:
  - name: app
    image: registry.example/app:1.2
    replicas: {initial: 1, max: 2}
  - name: web
    command: /usr/local/bin/demo
    replicas: {initial: 1, max: 2}
`
	tests := []struct {
		name       string
		pool       string
		services   string
		wantPool   int
		wantImages []Pool
		want       []want
	}{
		{name: "a number", pool: "  warm_pool: 2\n", services: svcs, wantPool: 2},
		{name: "default and images", pool: "  warm_pool:\n    default: 1\n    images: {\"registry.example/app:1.2\": 2}\n", services: svcs,
			wantPool: 1, wantImages: []Pool{{Image: "registry.example/app:1.2", Size: 2}}},
		{name: "images alone", pool: "  warm_pool: {images: {\"registry.example/app:1.2\": 1}}\n", services: svcs,
			wantImages: []Pool{{Image: "registry.example/app:1.2", Size: 1}}},
		{name: "an unknown key", pool: "  warm_pool: {defualt: 1}\n", services: svcs,
			want: []want{{"manager.warm_pool.defualt", `unknown field "defualt"; did you mean "default"?`}}},
		{name: "an image no service names", pool: "  warm_pool: {images: {\"registry.example/other:1\": 1}}\n", services: svcs,
			want: []want{{"manager.warm_pool.images.registry.example/other:1", `no service names image "registry.example/other:1"`}}},
		{name: "a negative size and a bad reference", pool: "  warm_pool: {images: {\"registry.example/app:1.2\": -1, \"Bad\": 1}}\n", services: svcs,
			want: []want{
				{"manager.warm_pool.images.Bad", `"Bad" is not an image reference`},
				{"manager.warm_pool.images.registry.example/app:1.2", "-1 is negative"},
			}},
		{name: "the pools need room", pool: "  warm_pool: {default: 3, images: {\"registry.example/app:1.2\": 4}}\n", services: svcs,
			want: []want{{"manager.servers", "starting needs 9 slots (app 1×1, web 1×1, warm pool 7) but the servers have 8"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tc.pool+tc.services), "catalog.yaml")
			if len(tc.want) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tc.wantPool, c.Manager.WarmPool)
				assert.Equal(t, tc.wantImages, c.Manager.WarmPoolImages)
				return
			}
			var cerr *Error
			require.ErrorAs(t, err, &cerr)
			require.Len(t, cerr.Problems, len(tc.want), "%v", cerr.Problems)
			for i, w := range tc.want {
				assert.Equal(t, w.field, cerr.Problems[i].Field)
				assert.Contains(t, cerr.Problems[i].Message, w.msg)
			}
		})
	}
	standalone := validCatalog()
	standalone.Manager.WarmPoolImages = []Pool{{Image: "app:1", Size: 1}}
	ps := standalone.Validate()
	require.NotEmpty(t, ps)
	assert.Equal(t, "manager.warm_pool.images", ps[0].Field)
	assert.Contains(t, ps[0].Message, "only the docker kind runs services' own images")

	// Two pools of one image can only come from JSON (a signal, a row).
	twice := validCatalog()
	dockerKind(twice)
	twice.Services[0].Image = "app:1"
	twice.Manager.WarmPoolImages = []Pool{{Image: "app:1", Size: 1}, {Image: "app:1", Size: 2}}
	ps = twice.Validate()
	require.Len(t, ps, 1, "%v", ps)
	assert.Equal(t, "manager.warm_pool.images.app:1", ps[0].Field)
	assert.Contains(t, ps[0].Message, `image "app:1" has two pools; give it one`)
}

// TestManagerTaskTimeout: the catalog's manager.task_timeout when set,
// else 2 s and a second more per 2,500 containers the Manager holds, at
// most 10 s; a set value must be whole seconds from 1 s to a minute.
func TestManagerTaskTimeout(t *testing.T) {
	for _, tc := range []struct {
		set        time.Duration
		containers int
		want       time.Duration
	}{
		{0, 0, 2 * time.Second},
		{0, 2499, 2 * time.Second},
		{0, 2500, 3 * time.Second},
		{0, 10100, 6 * time.Second},
		{0, 15000, 8 * time.Second},
		{0, 100000, 10 * time.Second},
		{5 * time.Second, 0, 5 * time.Second},
		{5 * time.Second, 10000, 5 * time.Second},
	} {
		m := Manager{TaskTimeout: tc.set}
		assert.Equal(t, tc.want, m.ManagerTaskTimeout(tc.containers), "task_timeout %s, %d containers", tc.set, tc.containers)
	}
	for _, bad := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Minute} {
		c := validCatalog()
		c.Manager.TaskTimeout = bad
		ps := c.Validate()
		if assert.Len(t, ps, 1, "task_timeout %s", bad) {
			assert.Equal(t, "manager.task_timeout", ps[0].Field)
		}
	}
}
