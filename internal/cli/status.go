package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

func (e *env) status(args []string) error {
	var c common
	fs := e.flags("status", &c)
	output := fs.String("o", "table", "output `format`: table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(e.stderr, "msm status: -o %q is not a format; use table or json\n", *output)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := e.dial(ctx, &c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := starter.Status(ctx, cl, c.Manager)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(e.stdout, st)
	return nil
}

// printStatus writes the status as tables a person reads.
func printStatus(out io.Writer, st workflows.Status) {
	fmt.Fprintf(out, "Manager %s (%s), %d operation(s) running\n", st.Manager, st.Kind, st.Operations)
	fmt.Fprintf(out, "Reports: %s\n\n", reportsLine(st))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREADY\tDESIRED")
	for _, s := range st.Services {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", s.Name, s.Ready, s.Desired)
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "SERVER\tSTATE\tADDRESS\tSLOTS USED")
	for _, s := range st.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\n", s.ID, s.State, s.Address, s.Used, s.Slots)
	}
	fmt.Fprintln(tw, "\t\t")
	fmt.Fprintln(tw, "CONTAINER\tSERVER\tSTATE\tSERVICE\tPORT\tHEALTHY")
	for _, c := range st.Containers {
		svc := c.Service
		if svc == "" {
			svc = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Server, c.State, svc, c.Port, strconv.FormatBool(c.Healthy))
	}
	tw.Flush()
	for _, u := range st.Unplaced {
		what := "warm pool"
		if u.Service != "" {
			what = u.Service
		}
		fmt.Fprintf(out, "\nUNPLACED %s: %d instance(s): %s\n", what, u.Count, u.Reason)
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
