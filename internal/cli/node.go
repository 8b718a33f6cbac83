package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/internal/metrics"
	"github.com/msm-project/msm/internal/tracing"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/node"
	"github.com/msm-project/msm/providers/docker"
)

func (e *env) node(args []string) error {
	var c common
	fs := e.flags("node", &c)
	server := fs.String("server", e.getenv("MSM_SERVER"), "this server's `name` in the catalog (MSM_SERVER)")
	state := fs.String("state-dir", e.getenv("MSM_STATE_DIR"), "`dir` for container records and logs (default .msm/nodes/SERVER)")
	every := fs.Duration("report-every", e.durationOr("MSM_REPORT_EVERY", 30*time.Second), "how often to send the Manager a usage summary (MSM_REPORT_EVERY; 0: never)")
	reportsEvery := fs.Duration("reports-every", e.durationOr("MSM_REPORTS_EVERY", node.DefaultReportsEvery),
		"how often to pass the agents' overload and idle reports on to the Manager, as one summary (MSM_REPORTS_EVERY; 0: each agent signals the Manager itself)")
	onDocker := fs.Bool("docker", false, "run this server's containers as Docker containers on the engine DOCKER_HOST names (else the local socket): the docker kind's node, which msm starts in a container on each engine")
	image := fs.String("docker-image", catalog.DefaultDockerImage, "with --docker: the `image` the containers run (msm and the services' programs)")
	network := fs.String("docker-network", "", "with --docker: the Docker `network` the containers join (default msm-MANAGER)")
	metricsAddr := fs.String("metrics-addr", e.getenv("MSM_METRICS_ADDR"), "serve this node's Prometheus metrics on http://`host:port`/metrics (MSM_METRICS_ADDR; empty: none; not with --docker yet)")
	cgroups := fs.String("cgroups", e.getenv("MSM_CGROUPS"), "where containers get cgroups of their own (v2; the node as root): auto (default: the host's hierarchy when it is cgroup v2, else rlimits alone), off, or a cgroup v2 `dir` (MSM_CGROUPS)")
	blockMetadata := fs.Bool("block-metadata", false, "before anything else, make the kernel refuse MicroServices (their users) any connection to the cloud's instance metadata service, which holds the instance's credentials and user data (iptables; the cloud kinds' nodes run with it, as root): the node starts nothing when it cannot")
	tokenFile := fs.String("join-token-file", e.getenv("MSM_JOIN_TOKEN_FILE"), "this server's join token, a `file` from `msm keys join-token`: the node signs its reports and its agents' keys come from it (MSM_JOIN_TOKEN_FILE; required when the worker has --key-file)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *server == "" {
		fmt.Fprintln(e.stderr, "msm node: --server NAME is required (or set MSM_SERVER)")
		return errUsage
	}
	if *blockMetadata {
		if err := node.BlockMetadata(node.Exec); err != nil {
			return err
		}
	}
	key, err := readJoinToken(*tokenFile)
	if err != nil {
		return err
	}
	// The docker kind hands its node containers their token in the
	// environment; it leaves it at once, so nothing this node starts
	// inherits it.
	if t := e.getenv(docker.JoinTokenEnv); t != "" && !key.Valid() {
		if key, err = trust.ParseKey(t); err != nil {
			return fmt.Errorf("%s: %w", docker.JoinTokenEnv, err)
		}
		os.Unsetenv(docker.JoinTokenEnv)
	}
	skipBinaryChecksum()
	ctx, stop := interrupted()
	defer stop()
	reg, err := e.metricsRegistry(*metricsAddr)
	if err != nil {
		return err
	}
	cl, err := e.dial(ctx, &c, 2*time.Minute)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *onDocker {
		n, err := e.newDockerNode(&c, *server, *image, *network, key)
		if err != nil {
			return err
		}
		if err := e.serveNodeMetrics(ctx, &c, *server, *metricsAddr, reg, n); err != nil {
			return err
		}
		return n.Run(ctx, cl)
	}
	cg, err := e.nodeCgroup(&c, *cgroups, *server)
	if err != nil {
		return err
	}
	n, err := e.newNode(&c, *server, *state, *every, *reportsEvery, key, cg)
	if err != nil {
		return err
	}
	if err := e.serveNodeMetrics(ctx, &c, *server, *metricsAddr, reg, n); err != nil {
		return err
	}
	return n.Run(ctx, cl)
}

// serveNodeMetrics serves reg (nil: none) with node n's counts on addr.
func (e *env) serveNodeMetrics(ctx context.Context, c *common, server, addr string, reg *prometheus.Registry, n metrics.NodeStatser) error {
	return e.serveWith(ctx, c, addr, reg, "the node's", metrics.NewNode(server, n))
}

// agentCommand is what this process's nodes start container agents with:
// the lean msm-agent beside this binary, else `msm agent` of this binary
// (node.AgentCommand), chosen once, and logged once when it is not the
// lean one.
func (e *env) agentCommand(c *common) ([]string, error) {
	if e.agentCmd != nil {
		return e.agentCmd, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the msm binary to start agents with, %w", err)
	}
	cmd, why := node.AgentCommand(self)
	if why != "" {
		e.logger(c).Info("container agents run as `msm agent`", "why", why)
	}
	e.agentCmd = cmd
	return cmd, nil
}

// newNode builds the node agent of server.
func (e *env) newNode(c *common, server, state string, every, reportsEvery time.Duration, key trust.Key, cg *cgroup.Group) (*node.Node, error) {
	if state == "" {
		state = filepath.Join(".msm", "nodes", server)
	}
	state, err := filepath.Abs(state)
	if err != nil {
		return nil, err
	}
	agent, err := e.agentCommand(c)
	if err != nil {
		return nil, err
	}
	codecKeys, err := e.codecKeys(c)
	if err != nil {
		return nil, err
	}
	return node.New(node.Config{
		Server:       server,
		Manager:      c.Manager,
		StateDir:     state,
		AgentCommand: agent,
		AgentEnv:     e.agentEnv(c),
		Log:          e.logger(c),
		ReportEvery:  every,
		ReportsEvery: reportsEvery,
		Meter:        node.HostMeter{},
		Key:          key,
		CodecKeys:    codecKeys,
		Cgroup:       cg,
	})
}

// nodeCgroup makes the cgroup a standalone node makes its containers'
// in, msm/<manager>-<server> of the hierarchy mode names ("auto": the
// host's when it is cgroup v2 and the node runs as root; "off"; or a
// cgroup v2 directory). Nil when there is none: in auto mode, one that
// cannot be made is logged and the node confines with rlimits alone.
func (e *env) nodeCgroup(c *common, mode, server string) (*cgroup.Group, error) {
	rel := "msm/" + c.Manager + "-" + server
	switch mode {
	case "off":
		return nil, nil
	case "", "auto":
		if os.Geteuid() != 0 || !cgroup.V2(cgroup.Root) {
			return nil, nil
		}
		g, err := cgroup.Make(cgroup.Root, rel)
		if err != nil {
			e.logger(c).Warn("containers get no cgroups, only rlimits", "error", err)
			return nil, nil
		}
		return &g, nil
	}
	g, err := cgroup.Make(mode, rel)
	if err != nil {
		return nil, fmt.Errorf("--cgroups %s: %w", mode, err)
	}
	return &g, nil
}

// newDockerNode builds the node of the Docker engine the environment names.
// It runs in a container of the image its containers run, so the agent
// command chosen here is the image's.
func (e *env) newDockerNode(c *common, server, image, network string, key trust.Key) (*node.Docker, error) {
	eng, err := docker.Dial(e.getenv("DOCKER_HOST"), catalog.EngineTLS{})
	if err != nil {
		return nil, err
	}
	agent, err := e.agentCommand(c)
	if err != nil {
		return nil, err
	}
	if network == "" {
		network = docker.Network(catalog.Manager{}, c.Manager)
	}
	codecKeys, err := e.codecKeys(c)
	if err != nil {
		return nil, err
	}
	return node.NewDocker(node.DockerConfig{
		Server:       server,
		Manager:      c.Manager,
		Engine:       eng,
		Image:        image,
		Network:      network,
		AgentCommand: agent,
		AgentEnv:     e.agentEnv(c),
		Log:          e.logger(c),
		Key:          key,
		CodecKeys:    codecKeys,
	})
}

// agentEnv is what this process's nodes add to their agents' basic
// environment: the Temporal settings, the API key itself when it came in
// TEMPORAL_API_KEY rather than a file.
func (e *env) agentEnv(c *common) []string {
	env := c.Env()
	if k := e.getenv("TEMPORAL_API_KEY"); k != "" && c.APIKeyFile == "" {
		env = append(env, "TEMPORAL_API_KEY="+k)
	}
	// Agents trace as their node does.
	for _, name := range tracing.Env {
		if v := e.getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}
