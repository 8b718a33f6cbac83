package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/msm-project/msm/node"
)

func (e *env) node(args []string) error {
	var c common
	fs := e.flags("node", &c)
	server := fs.String("server", e.getenv("MSM_SERVER"), "this server's `name` in the catalog (MSM_SERVER)")
	state := fs.String("state-dir", e.getenv("MSM_STATE_DIR"), "`dir` for container records and logs (default .msm/nodes/SERVER)")
	every := fs.Duration("report-every", e.durationOr("MSM_REPORT_EVERY", 30*time.Second), "how often to send the Manager a usage summary (MSM_REPORT_EVERY; 0: never)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *server == "" {
		fmt.Fprintln(e.stderr, "msm node: --server NAME is required (or set MSM_SERVER)")
		return errUsage
	}
	ctx, stop := interrupted()
	defer stop()
	cl, err := e.dial(ctx, &c, 2*time.Minute)
	if err != nil {
		return err
	}
	defer cl.Close()
	n, err := e.newNode(&c, *server, *state, *every)
	if err != nil {
		return err
	}
	return n.Run(ctx, cl)
}

// newNode builds the node agent of server; its agents are this same binary.
func (e *env) newNode(c *common, server, state string, every time.Duration) (*node.Node, error) {
	if state == "" {
		state = filepath.Join(".msm", "nodes", server)
	}
	state, err := filepath.Abs(state)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the msm binary to start agents with, %w", err)
	}
	return node.New(node.Config{
		Server:       server,
		Manager:      c.manager,
		StateDir:     state,
		AgentCommand: []string{self, "agent"},
		AgentEnv:     e.temporalEnv(c),
		Log:          e.logger(c),
		ReportEvery:  every,
		Meter:        node.HostMeter{},
	})
}
