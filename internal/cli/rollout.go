package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

const rolloutUsage = "usage: msm rollout status [SERVICE] [-o text|json] | msm rollout pause SERVICE | msm rollout resume SERVICE"

// rollout is `msm rollout status|pause|resume SERVICE`: where a service's
// roll to a new revision stands, and pausing or resuming it.
func (e *env) rollout(args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, rolloutUsage)
		return errUsage
	}
	action, args := args[0], args[1:]
	var c common
	fs := e.flags("rollout "+action, &c)
	output := fs.String("o", "text", "output `format`: text or json (status)")
	var service string
	var rest []string
	var err error
	if action == "status" && (len(args) == 0 || strings.HasPrefix(args[0], "-")) {
		// Every service's, unless one is named after the flags.
		if err = parse(fs, args); err != nil {
			return err
		}
		if rest = fs.Args(); len(rest) > 0 {
			service, rest = rest[0], rest[1:]
		}
	} else if service, rest, err = e.parseWithService(fs, args, rolloutUsage); err != nil {
		return err
	}
	if len(rest) != 0 || (*output != "text" && *output != "json") {
		fmt.Fprintln(e.stderr, rolloutUsage)
		return errUsage
	}
	switch action {
	case "pause", "resume":
		if service == "" {
			fmt.Fprintln(e.stderr, rolloutUsage)
			return errUsage
		}
		return e.update(&c, workflows.UpdateRollout, workflows.RolloutUpdate{Service: service, Action: action})
	case "status":
	default:
		fmt.Fprintf(e.stderr, "msm rollout: unknown action %q\n%s\n", action, rolloutUsage)
		return errUsage
	}
	return ask(e, &c, *output, func(ctx context.Context, cl client.Client) ([]workflows.RolloutStatus, error) {
		return starter.Rollouts(ctx, cl, c.Manager, service)
	}, func(out io.Writer, rs []workflows.RolloutStatus) {
		if len(rs) == 0 {
			what := "No service has"
			if service != "" {
				what = service + " has"
			}
			fmt.Fprintf(out, "%s rolled to a new revision since the Manager began.\n", what)
		}
		for _, r := range rs {
			printRollout(out, r, time.Now())
		}
	})
}

// printRollout writes where a roll stands at time now.
func printRollout(out io.Writer, r workflows.RolloutStatus, now time.Time) {
	state := r.State
	if r.Paused {
		state += ", paused"
	}
	switch {
	case r.Agents && r.From == r.To:
		fmt.Fprintf(out, "%s: agents to their node's version (msm upgrade agents), revision %s: %s\n", r.Service, r.To, state)
		fmt.Fprintf(out, "  instances: %d of %d run their node's agent, %d behind; %d healthy\n", r.Fresh, r.Desired, r.Stale, r.Ready)
	case r.Agents:
		fmt.Fprintf(out, "%s: revision %s → %s, and agents to their node's version: %s\n", r.Service, r.From, r.To, state)
		fmt.Fprintf(out, "  instances: %d of %d run revision %s on their node's agent, %d to replace; %d healthy\n", r.Fresh, r.Desired, rolloutTarget(r), r.Stale, r.Ready)
	default:
		fmt.Fprintf(out, "%s: revision %s → %s: %s\n", r.Service, r.From, r.To, state)
		fmt.Fprintf(out, "  instances: %d of %d run revision %s, %d another; %d healthy\n", r.Fresh, r.Desired, rolloutTarget(r), r.Stale, r.Ready)
	}
	ended := "running for " + now.Sub(r.Started).Round(time.Second).String()
	if !r.Ended.IsZero() {
		ended = "ended " + r.Ended.Local().Format("15:04:05") + " after " + r.Ended.Sub(r.Started).Round(100*time.Millisecond).String()
	}
	fmt.Fprintf(out, "  began %s (%d to replace), %s\n", r.Started.Local().Format("15:04:05"), r.Total, ended)
	if r.Waiting != "" {
		fmt.Fprintf(out, "  waiting: %s\n", r.Waiting)
	}
	if r.Error != "" {
		fmt.Fprintf(out, "  the new revision failed: %s\n", r.Error)
	}
}

// rolloutTarget is the revision a roll brings its instances to.
func rolloutTarget(r workflows.RolloutStatus) string {
	if r.State == workflows.RollRollingBack || r.State == workflows.RollRolledBack {
		return r.From
	}
	return r.To
}
