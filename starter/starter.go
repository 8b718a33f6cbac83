// Package starter holds the client side of msm: connecting to Temporal with
// clear errors and backoff, registering search attributes, starting the
// Manager with its catalog, and reading its status.
package starter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/wire"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Options says where Temporal is.
type Options struct {
	Address   string // host:port, default 127.0.0.1:7233
	Namespace string // default "default"
	// Wait is how long Dial keeps retrying an unreachable server; 0 tries once.
	Wait time.Duration
	Log  *slog.Logger
	// TLS dials over TLS, trusting CA (a PEM file; "" for the system roots).
	TLS bool
	CA  string
	// APIKey authenticates to Temporal (Temporal Cloud and servers with API
	// keys); it implies TLS.
	APIKey string
	// Cert and Key are PEM files of a client certificate and its key, for
	// a Temporal that requires one (mTLS); they imply TLS.
	Cert, Key string
	// Codec, when set, encrypts every payload the client writes and
	// decrypts those it reads (internal/codec).
	Codec *codec.Codec
	// Uncompressed sends requests without gzip, the SDK's default. A
	// container agent's requests are polls and small results: gzip only
	// costs it its buffers (~1.4 MiB per agent, measured) and CPU.
	Uncompressed bool
	// Metrics, when set, receives the SDK's own metrics (temporal_*).
	Metrics client.MetricsHandler
	// Interceptors intercept the client and the workers made from it
	// (internal/tracing's).
	Interceptors []interceptor.ClientInterceptor
}

// connection turns o's TLS and API-key settings into client options.
func (o Options) connection() (*tls.Config, client.Credentials, error) {
	var creds client.Credentials
	if o.APIKey != "" {
		creds = client.NewAPIKeyStaticCredentials(o.APIKey)
	}
	cfg, err := wire.TLSConfig(wire.Options{TLS: o.TLS, CA: o.CA, APIKey: o.APIKey, Cert: o.Cert, Key: o.Key})
	if err != nil {
		return nil, nil, err
	}
	return cfg, creds, nil
}

// Dial connects to Temporal, retrying with backoff for up to o.Wait, and
// says which address it tried when it gives up. If ctx is cancelled first,
// the error wraps context.Canceled.
func Dial(ctx context.Context, o Options) (client.Client, error) {
	if o.Address == "" {
		o.Address = "127.0.0.1:7233"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	tlsCfg, creds, err := o.connection()
	if err != nil {
		return nil, err
	}
	// giveUp explains why Dial stops: an interrupt wraps context.Canceled;
	// anything else says where Temporal was not found and how to start it.
	giveUp := func(err error) error {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("stopped connecting to Temporal at %s, %w", o.Address, ctx.Err())
		}
		//lint:ignore ST1005 Temporal is a name, and the message is shown as it is.
		return fmt.Errorf("Temporal is not reachable at %s (namespace %s): %w; start it with `make dev`, or set TEMPORAL_ADDRESS", o.Address, o.Namespace, err)
	}
	deadline := time.Now().Add(o.Wait)
	delay := 200 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn := client.ConnectionOptions{TLS: tlsCfg}
		if o.Uncompressed {
			conn.GrpcCompression = &client.GrpcCompressionNone{}
		}
		c, err := client.DialContext(dctx, client.Options{
			HostPort:          o.Address,
			Namespace:         o.Namespace,
			Logger:            newLogger(o.Log),
			ConnectionOptions: conn,
			Credentials:       creds,
			DataConverter:     DataConverter(o.Codec),
			MetricsHandler:    o.Metrics,
			Interceptors:      o.Interceptors,
		})
		cancel()
		if err == nil {
			return c, nil
		}
		// The last wait is cut to the deadline, so Dial keeps trying for
		// all of o.Wait rather than giving up when the next backoff would
		// overshoot it.
		left := time.Until(deadline)
		if ctx.Err() != nil || left <= 0 {
			return nil, giveUp(err)
		}
		wait := min(delay, left)
		o.Log.Warn("Temporal not reachable yet, retrying", "address", o.Address, "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, giveUp(err)
		case <-time.After(wait):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// EnsureSearchAttributes registers msm's search attributes in the
// namespace; existing ones are left as they are.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("listing search attributes, %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributeTypes {
		if _, ok := resp.GetCustomAttributes()[name]; ok {
			continue
		}
		v, err := enumspb.IndexedValueTypeFromString(typ)
		if err != nil {
			return fmt.Errorf("search attribute %s has type %q, %w", name, typ, err)
		}
		missing[name] = v
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("registering search attributes %v (an operator can add them with `temporal operator search-attribute create`), %w", keys(missing), err)
	}
	return nil
}

// StartManager starts the Manager if it is not running and hands it the
// catalog, in one call, so a Manager never runs without a catalog. The
// catalog is signed with key, the worker's (trust.WorkerKey), unless key
// is not Valid (the Manager does not authenticate reports).
func StartManager(ctx context.Context, c client.Client, manager string, cat *catalog.Catalog, source string, key trust.Key) error {
	sig := workflows.CatalogSignal{Catalog: *cat, Source: source}
	sig.Auth = agentapi.Sign(key, sig.Fields())
	_, err := c.SignalWithStartWorkflow(ctx, workflows.ManagerID(manager), workflows.SignalCatalog, sig,
		client.StartWorkflowOptions{
			ID:        workflows.ManagerID(manager),
			TaskQueue: workflows.TaskQueue,
			// A worker that dies in one of the Manager's tasks costs this
			// (a running Manager keeps its own until it continues as new).
			WorkflowTaskTimeout: cat.Manager.ManagerTaskTimeout(0),
			// Ended runs (terminated by hand) may be started again.
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		},
		workflows.Manager, workflows.ManagerInput{Manager: manager})
	if err != nil {
		return fmt.Errorf("starting manager %s, %w", manager, err)
	}
	return nil
}

// TerminateManager terminates the Manager's run and the operations it
// started that still run: they outlive its runs (a run that continues as
// new hands its running operations over to the next), so terminating the
// Manager alone would leave them working for no one.
func TerminateManager(ctx context.Context, c client.Client, manager, reason string) error {
	err := c.TerminateWorkflow(ctx, workflows.ManagerID(manager), "", reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		err = nil
	}
	var token []byte
	for {
		resp, lerr := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token,
			Query: fmt.Sprintf("MsmManager = '%s' AND ExecutionStatus = 'Running'", manager)})
		if lerr != nil {
			return errors.Join(err, fmt.Errorf("listing the operations of manager %s, %w", manager, lerr))
		}
		for _, x := range resp.Executions {
			id := x.GetExecution().GetWorkflowId()
			if id == workflows.ManagerID(manager) {
				continue
			}
			if terr := c.TerminateWorkflow(ctx, id, "", reason); terr != nil && !errors.As(terr, &notFound) {
				err = errors.Join(err, fmt.Errorf("terminating %s, %w", id, terr))
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return err
		}
	}
}

// Status queries the Manager.
func Status(ctx context.Context, c client.Client, manager string) (workflows.Status, error) {
	var st workflows.Status
	return st, query(ctx, c, manager, &st, workflows.QueryStatus)
}

// Log reads the Manager's decision log: the records q selects.
func Log(ctx context.Context, c client.Client, manager string, q workflows.LogQuery) (workflows.LogPage, error) {
	var page workflows.LogPage
	return page, query(ctx, c, manager, &page, workflows.QueryLog, q)
}

// Why asks the Manager what it knows of one service's instances and
// decisions (workflows.Why.Reasons says why it is where it is).
func Why(ctx context.Context, c client.Client, manager, service string) (workflows.Why, error) {
	var w workflows.Why
	return w, query(ctx, c, manager, &w, workflows.QueryWhy, service)
}

// Rollouts asks the Manager where the roll of service (every service's
// last: "") stands.
func Rollouts(ctx context.Context, c client.Client, manager, service string) ([]workflows.RolloutStatus, error) {
	var rs []workflows.RolloutStatus
	return rs, query(ctx, c, manager, &rs, workflows.QueryRollout, service)
}

// query asks the Manager's workflow query name with args into out.
func query(ctx context.Context, c client.Client, manager string, out any, name string, args ...any) error {
	v, err := c.QueryWorkflow(ctx, workflows.ManagerID(manager), "", name, args...)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("manager %q is not running: start it with `msm worker --catalog FILE` (or `make dev`)", manager)
		}
		var qf *serviceerror.QueryFailed
		if errors.As(err, &qf) {
			return errors.New(qf.Message)
		}
		return fmt.Errorf("querying manager %s, %w", manager, err)
	}
	if err := v.Get(out); err != nil {
		return fmt.Errorf("decoding the answer of the Manager's %s query, %w", name, err)
	}
	return nil
}

func keys(m map[string]enumspb.IndexedValueType) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Update sends an operator's update to the Manager and waits for its
// answer. A validator's rejection comes back as the error, with nothing
// written to the Manager's history.
func Update(ctx context.Context, c client.Client, manager, name string, arg any) (workflows.ProvisionAccepted, error) {
	var res workflows.ProvisionAccepted
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ManagerID(manager),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return res, fmt.Errorf("manager %q is not running: start it with `msm worker --catalog FILE` (or `make dev`)", manager)
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return res, errors.New(app.Message())
		}
		return res, err
	}
	return res, nil
}

// RejectCatalog tells the Manager that a changed catalog was not taken, so
// `msm status` shows why; the catalog in force stays.
// It is signed as StartManager signs the catalog.
func RejectCatalog(ctx context.Context, c client.Client, manager, source string, why error, key trust.Key) error {
	sig := workflows.CatalogRejectedSignal{Source: source, Error: why.Error()}
	sig.Auth = agentapi.Sign(key, sig.Fields())
	return c.SignalWorkflow(ctx, workflows.ManagerID(manager), "", workflows.SignalCatalogRejected, sig)
}

// Renew has the Manager continue as a new run once no operation runs (msm
// upgrade manager), and returns its answer: the run that continues.
func Renew(ctx context.Context, c client.Client, manager string) (workflows.Renewed, error) {
	var res workflows.Renewed
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ManagerID(manager),
		UpdateName:   workflows.UpdateRenew,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &res)
	}
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return res, fmt.Errorf("manager %q is not running: start it with `msm worker --catalog FILE` (or `make dev`)", manager)
	case err != nil && strings.Contains(err.Error(), "unknown update"):
		return res, fmt.Errorf("the workers serving manager %q are of a build before `msm upgrade manager`: upgrade them first, %w", manager, err)
	case err != nil:
		return res, fmt.Errorf("asking manager %q to continue as new, %w", manager, err)
	}
	return res, nil
}

// RunID is the Manager's current run.
func RunID(ctx context.Context, c client.Client, manager string) (string, error) {
	d, err := c.DescribeWorkflow(ctx, workflows.ManagerID(manager), "")
	if err != nil {
		return "", fmt.Errorf("describing manager %q, %w", manager, err)
	}
	return d.WorkflowExecution.RunID, nil
}
