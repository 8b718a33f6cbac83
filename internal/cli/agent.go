package cli

import (
	"fmt"
	"runtime"
	"time"

	"github.com/msm-project/msm/agent"
)

func (e *env) agent(args []string) error {
	var c common
	fs := e.flags("agent", &c)
	container := fs.String("container", e.getenv("MSM_CONTAINER"), "container `ID` (MSM_CONTAINER)")
	server := fs.String("server", e.getenv("MSM_SERVER"), "server `name` (MSM_SERVER)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *container == "" {
		fmt.Fprintln(e.stderr, "msm agent: --container ID is required; agents are normally started by `msm node`")
		return errUsage
	}
	skipBinaryChecksum()
	runtime.GOMAXPROCS(1)
	ctx, stop := interrupted()
	defer stop()
	cl, err := e.dial(ctx, &c, time.Minute)
	if err != nil {
		return err
	}
	defer cl.Close()
	a, err := agent.New(agent.Config{Container: *container, Server: *server, Manager: c.manager, Log: e.logger(&c)})
	if err != nil {
		return err
	}
	return a.Run(ctx, cl)
}
