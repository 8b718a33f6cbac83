package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

func (e *env) status(args []string) error {
	var c common
	fs := e.flags("status", &c)
	output := fs.String("o", "table", "output `format`: table or json")
	watch := fs.Bool("watch", false, "redraw the tables whenever they change, until Ctrl-C")
	every := fs.Duration("interval", time.Second, "with --watch, how often to ask the Manager")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(e.stderr, "msm status: -o %q is not a format; use table or json\n", *output)
		return errUsage
	}
	if *watch && (*output != "table" || *every <= 0) {
		fmt.Fprintln(e.stderr, "msm status: --watch draws tables (-o table) every --interval (above 0)")
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := e.dial(ctx, &c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *watch {
		return e.watchStatus(cl, c.Manager, *every)
	}
	st, err := starter.Status(ctx, cl, c.Manager)
	if err != nil {
		return err
	}
	if *output == "json" {
		return e.writeJSON(st)
	}
	printStatus(e.stdout, st)
	return nil
}

// printStatus writes the status as tables a person reads.
func printStatus(out io.Writer, st workflows.Status) {
	fmt.Fprintf(out, "Manager %s (%s), %d operation(s) running, answered by a worker of msm %s\n", st.Manager, st.Kind, st.Operations, orDash(st.Worker))
	fmt.Fprintf(out, "Reports: %s\n\n", reportsLine(st))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// The floors of schedule rules, when a service has one.
	floors := slices.ContainsFunc(st.Services, func(s workflows.ServiceStatus) bool { return s.Floor > 0 })
	if floors {
		fmt.Fprintln(tw, "SERVICE\tREADY\tDESIRED\tFLOOR")
	} else {
		fmt.Fprintln(tw, "SERVICE\tREADY\tDESIRED")
	}
	for _, s := range st.Services {
		switch {
		case !floors:
			fmt.Fprintf(tw, "%s\t%d\t%d\n", s.Name, s.Ready, s.Desired)
		case s.Floor > 0:
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s.Name, s.Ready, s.Desired, s.Floor)
		default:
			fmt.Fprintf(tw, "%s\t%d\t%d\t-\n", s.Name, s.Ready, s.Desired)
		}
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "SERVER\tSTATE\tADDRESS\tSLOTS USED\tNODE")
	for _, s := range st.Servers {
		state := s.State
		if s.UnheardUntil != nil {
			state += ", unheard"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", s.ID, state, s.Address, s.Used, s.Slots, orDash(s.Node))
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "CONTAINER\tSERVER\tSTATE\tSERVICE\tPORT\tHEALTHY\tAGENT")
	for _, c := range st.Containers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.ID, c.Server, c.State, orDash(c.Service), c.Port, strconv.FormatBool(c.Healthy), orDash(c.Agent))
	}
	tw.Flush()
	for _, u := range st.Unplaced {
		what := "warm pool"
		if u.Service != "" {
			what = u.Service
		}
		fmt.Fprintf(out, "\nUNPLACED %s: %d instance(s): %s\n", what, u.Count, u.Reason)
	}
	for _, s := range st.Servers {
		if s.UnheardUntil != nil {
			fmt.Fprintf(out, "\nUNHEARD %s: its lease timed out while Temporal or the Manager was away; nothing of it is recovered unless its node has not leased again by %s\n",
				s.ID, s.UnheardUntil.Local().Format(time.TimeOnly))
		}
	}
	for _, s := range st.Services {
		if r := s.Rollout; r != nil && r.State != workflows.RollDone {
			state := r.State
			if r.Paused {
				state += ", paused"
			}
			if r.Waiting != "" {
				state += " (waiting: " + r.Waiting + ")"
			}
			if r.Agents && r.From == r.To {
				fmt.Fprintf(out, "\nROLLOUT %s: %s, agents to their node's version: %d of %d run it (msm rollout status %s)\n",
					s.Name, state, r.Fresh, r.Desired, s.Name)
				continue
			}
			fmt.Fprintf(out, "\nROLLOUT %s: %s, revision %s → %s: %d of %d run revision %s (msm rollout status %s)\n",
				s.Name, state, r.From, r.To, r.Fresh, r.Desired, rolloutTarget(*r), s.Name)
		}
	}
	for _, c := range st.Containers {
		if c.Error != "" {
			fmt.Fprintf(out, "\n%s: %s\n", c.ID, c.Error)
		}
	}
}

// reportsLine says whether the Manager believes only its own nodes,
// agents, operations and worker, and what it refused.
func reportsLine(st workflows.Status) string {
	if st.Reports != workflows.ReportsAuthenticated {
		return "NOT authenticated: any client of the namespace can report; run the worker with --key-file (msm keys new) and each node with --join-token-file"
	}
	line := fmt.Sprintf("authenticated, %d rejected", st.Rejected)
	for i := len(st.Events) - 1; i >= 0; i-- {
		if strings.HasPrefix(st.Events[i].Message, "rejected ") {
			return line + "; the last: " + st.Events[i].Message
		}
	}
	return line
}

// watchStatus redraws the status tables whenever they change, until
// Ctrl-C. On a terminal each frame overwrites the last in place (cursor
// home, each line cleared to its end, the rest of the screen cleared
// after it: nothing blanks between frames, so nothing flickers); into a
// pipe or file each new frame follows the last after a blank line.
func (e *env) watchStatus(cl client.Client, manager string, every time.Duration) error {
	ctx, stop := interrupted()
	defer stop()
	term := isTerminal(e.stdout)
	last := ""
	for {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := starter.Status(qctx, cl, manager)
		cancel()
		var b strings.Builder
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(&b, "msm status: %v (retrying every %s)\n", err, every)
		} else {
			printStatus(&b, st)
		}
		if frame := b.String(); frame != last {
			last = frame
			if term {
				fmt.Fprint(e.stdout, redraw(frame, time.Now()))
			} else {
				fmt.Fprintf(e.stdout, "--- %s\n%s\n", time.Now().Format(time.TimeOnly), frame)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// redraw is frame as one write that replaces the screen's content in
// place: home, each line then "erase to end of line", and "erase below"
// at the end.
func redraw(frame string, at time.Time) string {
	var b strings.Builder
	b.WriteString("\x1b[H")
	fmt.Fprintf(&b, "msm status --watch, %s (Ctrl-C stops)\x1b[K\n\x1b[K\n", at.Format(time.TimeOnly))
	for _, line := range strings.SplitAfter(frame, "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\x1b[K")
		if strings.HasSuffix(line, "\n") {
			b.WriteString("\n")
		}
	}
	b.WriteString("\x1b[J")
	return b.String()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// orDash is s, or "-" when it is empty (not known, or none).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
