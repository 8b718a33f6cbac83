package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// why is `msm why SERVICE`: why the service is where it is now, and its
// last decisions.
func (e *env) why(args []string) error {
	var c common
	fs := e.flags("why", &c)
	output := fs.String("o", "text", "output `format`: text or json")
	const usage = "usage: msm why SERVICE [-o text|json]"
	service, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 0 || (*output != "text" && *output != "json") {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	return ask(e, &c, *output, func(ctx context.Context, cl client.Client) (workflows.Why, error) {
		return starter.Why(ctx, cl, c.Manager, service)
	}, func(out io.Writer, w workflows.Why) { printWhy(out, w, time.Now()) })
}

// ask asks the Manager with q, on a client of c's Temporal, and writes the
// answer as JSON (format "json") or with print.
func ask[T any](e *env, c *common, format string, q func(context.Context, client.Client) (T, error), print func(io.Writer, T)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := e.dial(ctx, c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	v, err := q(ctx, cl)
	if err != nil {
		return err
	}
	if format == "json" {
		return e.writeJSON(v)
	}
	print(e.stdout, v)
	return nil
}

// writeJSON writes v as indented JSON.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printWhy writes what msm why says of a service at time now.
func printWhy(out io.Writer, w workflows.Why, now time.Time) {
	floor := ""
	if w.Floor > 0 {
		floor = fmt.Sprintf(", floor %d", w.Floor)
	}
	fmt.Fprintf(out, "%s: %d/%d ready, desired %d (replicas %d..%d%s)\n", w.Service, w.Ready, w.Desired, w.Desired, w.Min, w.Max, floor)
	for _, r := range w.Reasons(now) {
		fmt.Fprintf(out, "  - %s\n", r)
	}
	if len(w.Decisions) == 0 {
		fmt.Fprintln(out, "\nNo decision about it yet.")
		return
	}
	fmt.Fprintln(out, "\nLast decisions:")
	for _, r := range w.Decisions {
		printRecord(out, r)
	}
}

// printRecord writes one record of the decision log: a line, then its
// trigger, why and outcome indented under it.
func printRecord(out io.Writer, r workflows.Record) {
	what := ""
	if len(r.Services) > 0 {
		what = strings.Join(r.Services, ",")
	} else if len(r.Servers) > 0 {
		what = strings.Join(r.Servers, ",")
	}
	fmt.Fprintf(out, "%s  %-11s %-12s %s\n", r.Time.Local().Format("15:04:05.000"), r.Kind, what, r.Message)
	if r.Trigger != "" {
		fmt.Fprintf(out, "%38s %s\n", "trigger:", r.Trigger)
	}
	if r.Why != "" {
		fmt.Fprintf(out, "%38s %s\n", "why:", r.Why)
	}
	if r.Outcome != "" {
		fmt.Fprintf(out, "%38s %s\n", "outcome:", r.Outcome)
	}
	if r.Took > 0 {
		fmt.Fprintf(out, "%38s %s\n", "took:", r.Took)
	}
}

// followEvery is how often msm events -f asks for new records: a decision
// shows within it (and a query round trip) of being made.
const followEvery = 250 * time.Millisecond

// events is `msm events [--service S] [--server S] [--last N] [-f]`: the
// decision log, and with -f the records that follow as they are made.
func (e *env) events(args []string) error {
	var c common
	fs := e.flags("events", &c)
	service := fs.String("service", "", "only the records of this `service`")
	server := fs.String("server", "", "only the records of this `server`")
	last := fs.Int("last", 20, "print the last `N` records first (0: all the Manager keeps)")
	follow := fs.Bool("f", false, "follow: print each new record as it is made, until Ctrl-C")
	output := fs.String("o", "text", "output `format`: text, or json (one record per line)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*output != "text" && *output != "json") || *last < 0 {
		fmt.Fprintln(e.stderr, "usage: msm events [--service S] [--server S] [--last N] [-f] [-o text|json]")
		return errUsage
	}
	ctx, cancel := interrupted()
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	cl, err := e.dial(dctx, &c, 0)
	dcancel()
	if err != nil {
		return err
	}
	defer cl.Close()
	print := func(r workflows.Record) error {
		if *output == "json" {
			return json.NewEncoder(e.stdout).Encode(r)
		}
		printRecord(e.stdout, r)
		return nil
	}
	q := workflows.LogQuery{Service: *service, Server: *server, Last: *last}
	for {
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		page, err := starter.Log(qctx, cl, c.Manager, q)
		qcancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			if !*follow {
				return err
			}
			// A Manager continuing as new or a worker restarting answers
			// again shortly: say so, and keep following.
			fmt.Fprintf(e.stderr, "msm events: %v (retrying)\n", err)
		} else if page.Seq < q.After {
			// A new Manager (its log began again): follow it from its start.
			fmt.Fprintln(e.stderr, "msm events: the Manager's log began again")
			q.After, q.Last = 0, 0
			continue
		} else {
			for _, r := range page.Records {
				if err := print(r); err != nil {
					return err
				}
			}
			q.After, q.Last = page.Seq, 0
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followEvery):
		}
	}
}
