package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// extend is `msm extend SERVICE [--count N] [--reason TEXT]`.
func (e *env) extend(args []string) error {
	var c common
	fs := e.flags("extend", &c)
	count := fs.Int("count", 1, "how many instances to add")
	reason := fs.String("reason", "", "why, for the event log")
	const usage = "usage: msm extend SERVICE [--count N] [--reason TEXT]"
	service, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	return e.update(&c, workflows.UpdateExtend, workflows.ExtendUpdate{Service: service, Count: *count, Reason: *reason})
}

// scale is `msm scale SERVICE N`.
func (e *env) scale(args []string) error {
	var c common
	fs := e.flags("scale", &c)
	const usage = "usage: msm scale SERVICE N"
	service, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	n, err := strconv.Atoi(rest[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "msm scale: %q is not a number of instances\n%s\n", rest[0], usage)
		return errUsage
	}
	return e.update(&c, workflows.UpdateScale, workflows.ScaleUpdate{Service: service, Replicas: n})
}

// parseWithService parses a command whose first argument is a service,
// with flags before or after it, and returns the service and the other
// arguments.
func (e *env) parseWithService(fs *flag.FlagSet, args []string, usage string) (string, []string, error) {
	// The flag package stops at the first argument: take a leading service
	// first, so `msm extend web --count 2` works as well as the reverse.
	var service string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		service, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", nil, err
	}
	rest := fs.Args()
	if service == "" {
		if len(rest) == 0 {
			fmt.Fprintln(e.stderr, usage)
			return "", nil, errUsage
		}
		service, rest = rest[0], rest[1:]
	}
	return service, rest, nil
}

func (e *env) update(c *common, name string, arg any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := e.dial(ctx, c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := starter.Update(ctx, cl, c.Manager, name, arg)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.Message)
	return nil
}

// drain is `msm drain SERVER [--dry-run]`.
func (e *env) drain(args []string) error {
	var c common
	fs := e.flags("drain", &c)
	dry := fs.Bool("dry-run", false, "print the plan without acting")
	const usage = "usage: msm drain SERVER [--dry-run]"
	server, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	return e.update(&c, workflows.UpdateDrain, workflows.DrainUpdate{Server: server, DryRun: *dry})
}

// forget is `msm forget SERVER`: a lost server forgotten now.
func (e *env) forget(args []string) error {
	var c common
	fs := e.flags("forget", &c)
	const usage = "usage: msm forget SERVER"
	server, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 0 || server == "" {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	return e.update(&c, workflows.UpdateForget, workflows.ForgetUpdate{Server: server})
}
