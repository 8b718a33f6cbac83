package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/worker"
)

// DeploymentOf is the Worker Deployment of a Manager's versioned workers
// (`msm worker --versioned`): one per Manager, its versions the builds.
func DeploymentOf(manager string) string { return "msm-" + manager }

// firstVersion makes dep's version the deployment's current one when the
// deployment has none yet (its first versioned worker: until a version is
// current, versioned workers take no task), and otherwise says how this
// build becomes current. The server knows a version only once its workers
// polled: it is tried again until then, for up to a minute.
func firstVersion(ctx context.Context, cl client.Client, dep worker.Deployment, log *slog.Logger) {
	h := cl.WorkerDeploymentClient().GetHandle(dep.Name)
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil {
		d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
		var nf *serviceerror.NotFound
		switch {
		case err == nil && d.Info.RoutingConfig.CurrentVersion != nil:
			if cur := d.Info.RoutingConfig.CurrentVersion.BuildID; cur != dep.BuildID {
				log.Info("this worker's build waits: it takes the Manager's tasks once it is the current version",
					"deployment", dep.Name, "build", dep.BuildID, "current", cur, "make it current", "msm upgrade workers --build-id "+dep.BuildID)
			}
			return
		case err != nil && !errors.As(err, &nf):
			log.Warn("reading the worker deployment", "deployment", dep.Name, "error", err)
		default:
			_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: dep.BuildID})
			if err == nil {
				log.Info("the first version of the worker deployment is current", "deployment", dep.Name, "build", dep.BuildID)
				return
			}
			// Until its pollers are seen the server knows no such
			// deployment or version (NotFound, or FailedPrecondition
			// "does your Worker Deployment have pollers?"): try again.
			if time.Now().After(deadline) {
				log.Error("making this build the deployment's current version", "deployment", dep.Name, "build", dep.BuildID, "error", err)
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

const upgradeUsage = `usage: msm upgrade workers [--build-id ID] [--wait DURATION]: make a build of versioned workers (msm worker --versioned) the one the Manager runs on
       msm upgrade manager [--wait DURATION]: have the Manager continue as a new run on its workers' build, once its operations end
       msm upgrade agents [SERVICE...] [--wait DURATION]: replace the instances whose agent is behind their node's version (extend, then destroy)`

// upgrade is `msm upgrade workers|agents`.
func (e *env) upgrade(args []string) error {
	if len(args) > 0 && args[0] == "workers" {
		return e.upgradeWorkers(args)
	}
	if len(args) > 0 && args[0] == "agents" {
		return e.upgradeAgents(args[1:])
	}
	if len(args) > 0 && args[0] == "manager" {
		return e.upgradeManager(args[1:])
	}
	fmt.Fprintln(e.stderr, upgradeUsage)
	return errUsage
}

// upgradeWorkers is `msm upgrade workers`: it makes a build the current
// version of the Manager's Worker Deployment, then says, or waits until, no
// operation still runs on the versions before.
func (e *env) upgradeWorkers(args []string) error {
	var c common
	fs := e.flags("upgrade workers", &c)
	build := fs.String("build-id", version.Get(), "the build to make current: its workers must be polling (default: this msm's version)")
	wait := fs.Duration("wait", 0, "wait up to this long until no operation runs on an older build, so its workers may be stopped (0: say how many do and return)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+*wait)
	defer cancel()
	cl, err := e.dial(ctx, &c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	name := DeploymentOf(c.Manager)
	h := cl.WorkerDeploymentClient().GetHandle(name)
	was := "unversioned workers"
	var token []byte
	var nf *serviceerror.NotFound
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	switch {
	case err == nil:
		token = d.ConflictToken
		if cur := d.Info.RoutingConfig.CurrentVersion; cur != nil {
			was = "build " + cur.BuildID
		}
	case errors.As(err, &nf):
		return fmt.Errorf("the Manager %s has no versioned workers (deployment %s): start them with `msm worker --versioned`", c.Manager, name)
	default:
		return fmt.Errorf("reading deployment %s, %w", name, err)
	}
	_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: *build, ConflictToken: token})
	var fp *serviceerror.FailedPrecondition
	if errors.As(err, &nf) || errors.As(err, &fp) {
		return fmt.Errorf("no worker of build %s serves deployment %s yet: start `msm worker --versioned` of that build first (%v)", *build, name, err)
	}
	if err != nil {
		return fmt.Errorf("making build %s current in deployment %s, %w", *build, name, err)
	}
	fmt.Fprintf(e.stdout, "Deployment %s: build %s is current (was %s): the Manager runs on it from its next task, new operations begin on it\n", name, *build, was)
	deadline := time.Now().Add(*wait)
	for {
		old, err := pinnedElsewhere(ctx, cl, name, *build)
		if err != nil {
			return err
		}
		if len(old) == 0 {
			fmt.Fprintln(e.stdout, "No operation runs on an older build: its workers may be stopped")
			return nil
		}
		if *wait <= 0 || time.Now().After(deadline) {
			fmt.Fprintf(e.stdout, "Still running on older builds (keep their workers until they end): %s\n", strings.Join(old, ", "))
			if *wait > 0 {
				return &exitError{code: 1}
			}
			return nil
		}
		time.Sleep(time.Second)
	}
}

// pinnedElsewhere lists the operations still running pinned to a build of
// deployment other than build, as "build: id".
func pinnedElsewhere(ctx context.Context, cl client.Client, deployment, build string) ([]string, error) {
	q := fmt.Sprintf(`TemporalWorkflowVersioningBehavior = "Pinned" AND ExecutionStatus = "Running" AND TemporalWorkerDeploymentVersion != "%s:%s" AND TemporalWorkerDeploymentVersion STARTS_WITH "%s:"`,
		deployment, build, deployment)
	resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q})
	if err != nil {
		return nil, fmt.Errorf("listing the operations of older builds, %w", err)
	}
	var out []string
	for _, x := range resp.Executions {
		out = append(out, x.GetExecution().GetWorkflowId())
	}
	return out, nil
}

// upgradeManager is `msm upgrade manager`: once every worker runs the new
// build, the Manager continues as a new run, so that the whole run is the
// new build's (a run keeps what the build that began it decided at its
// start). It waits until the new run is there.
func (e *env) upgradeManager(args []string) error {
	var c common
	fs := e.flags("upgrade manager", &c)
	wait := fs.Duration("wait", time.Minute, "wait up to this long for the new run (its running operations end first)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, upgradeUsage)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+*wait)
	defer cancel()
	cl, err := e.dial(ctx, &c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := starter.Renew(ctx, cl, c.Manager)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.Message)
	deadline := time.Now().Add(*wait)
	for {
		run, err := starter.RunID(ctx, cl, c.Manager)
		if err != nil {
			return err
		}
		if run != res.RunID {
			worker := "?"
			if st, err := starter.Status(ctx, cl, c.Manager); err == nil {
				worker = st.Worker
			}
			fmt.Fprintf(e.stdout, "The Manager runs as run %s (was %s), answered by a worker of msm %s\n", run, res.RunID, worker)
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(e.stdout, "Still run %s after %s: it continues as new once its running operations end (msm status)\n", run, *wait)
			return &exitError{code: 1}
		}
		time.Sleep(250 * time.Millisecond)
	}
}
