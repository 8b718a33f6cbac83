package wire_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/wire"
	"github.com/msm-project/msm/starter"
)

// The contract: workflows run by the Go SDK call activities served by a
// wire.Worker, on a real dev server (bin/temporal; skipped without it).

const (
	workflowQueue = "wire-test-workflows"
	activityQueue = "wire-test-activities"
)

type echoIn struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type echoOut struct {
	Greeting string        `json:"greeting"`
	Took     time.Duration `json:"took"`
}

// call is the test workflow: it runs activity name with arg on the wire
// worker's queue under the given options and returns its result.
type call struct {
	Activity     string
	Queue        string // default activityQueue
	Arg          echoIn
	StartToClose time.Duration // default 20 s
	Heartbeat    time.Duration
	Attempts     int32
	CancelIn     time.Duration // cancel the activity after this long (0: never)
}

func callWorkflow(ctx workflow.Context, c call) (echoOut, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           cmp.Or(c.Queue, activityQueue),
		StartToCloseTimeout: cmp.Or(c.StartToClose, 20*time.Second),
		HeartbeatTimeout:    c.Heartbeat,
		WaitForCancellation: true,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: c.Attempts},
	})
	actx, cancel := workflow.WithCancel(ctx)
	f := workflow.ExecuteActivity(actx, c.Activity, c.Arg)
	if c.CancelIn > 0 {
		_ = workflow.Sleep(ctx, c.CancelIn)
		cancel()
	}
	var out echoOut
	err := f.Get(ctx, &out)
	return out, err
}

// signalWorkflow returns the first value signalled to it as "greet".
func signalWorkflow(ctx workflow.Context) (echoIn, error) {
	var in echoIn
	workflow.GetSignalChannel(ctx, "greet").Receive(ctx, &in)
	return in, nil
}

type env struct {
	address string // the dev server's
	sdk     client.Client
	wire    *wire.Client
	// calls counts the attempts of the flaky activity.
	calls atomic.Int32
	// cancelled is closed when the blocking activity saw its cancellation.
	cancelled chan error
}

// shared is the tests' one dev server and workers (TestMain).
var (
	shared    *env
	sharedErr error
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", "bin", "temporal")
	if _, err := os.Stat(bin); err != nil {
		sharedErr = fmt.Errorf("no temporal CLI at %s: run `make bin/temporal` to build it", bin)
		os.Exit(m.Run())
	}
	var cleanup []func()
	shared, sharedErr = setUp(bin, &cleanup)
	code := m.Run()
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	os.Exit(code)
}

// start returns the shared env, or skips the test without a dev server.
func start(t *testing.T) *env {
	t.Helper()
	if shared == nil {
		if strings.HasPrefix(fmt.Sprint(sharedErr), "no temporal CLI") {
			t.Skip(sharedErr)
		}
		t.Fatal(sharedErr)
	}
	return shared
}

func setUp(bin string, cleanup *[]func()) (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin})
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, func() { _ = srv.Kill() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sdk, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: log.NewStructuredLogger(quiet)})
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, sdk.Close)
	w := worker.New(sdk, workflowQueue, worker.Options{})
	w.RegisterWorkflow(callWorkflow)
	w.RegisterWorkflow(signalWorkflow)
	if err := w.Start(); err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, w.Stop)

	e := &env{address: srv.Address(), sdk: sdk, cancelled: make(chan error, 1)}
	e.wire, err = wire.Dial(ctx, wire.Options{Address: srv.Address(), Identity: "wire-test", Log: quiet})
	if err != nil {
		return nil, err
	}
	*cleanup = append(*cleanup, e.wire.Close)
	ww := wire.NewWorker(e.wire, activityQueue)
	ww.Register("Echo", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		return echoOut{Greeting: fmt.Sprintf("hello %s ×%d", in.Name, in.Count), Took: time.Second}, nil
	}))
	ww.Register("Refuse", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		return echoOut{}, wire.NonRetryable("no "+in.Name+" here", "NoSuchThing", errors.New("the cause"))
	}))
	ww.Register("Flaky", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		if n := e.calls.Add(1); n < 3 {
			return echoOut{}, fmt.Errorf("attempt %d failed", n)
		}
		return echoOut{Greeting: "third time"}, nil
	}))
	ww.Register("Nothing", wire.ActivityNoResult(func(ctx context.Context, in echoIn) error { return nil }))
	// Slow heartbeats every 50 ms for in.Count × 100 ms, then answers.
	ww.Register("Slow", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		begin := time.Now()
		for time.Since(begin) < time.Duration(in.Count)*100*time.Millisecond {
			wire.Heartbeat(ctx, "working")
			select {
			case <-ctx.Done():
				return echoOut{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return echoOut{Greeting: "done", Took: time.Since(begin)}, nil
	}))
	// Block heartbeats until its context ends, and says why.
	ww.Register("Block", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		for ctx.Err() == nil {
			wire.Heartbeat(ctx, "blocked")
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		select { // never blocks: a failed test may not read it
		case e.cancelled <- context.Cause(ctx):
		default:
		}
		return echoOut{}, ctx.Err()
	}))
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ww.Run(wctx) }()
	*cleanup = append(*cleanup, func() {
		stop()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "wire.Worker.Run returned", err, "when stopped, not nil")
			os.Exit(1)
		}
	})
	return e, nil
}

func (e *env) run(t *testing.T, c call) (echoOut, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := e.sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflowQueue}, callWorkflow, c)
	require.NoError(t, err)
	var out echoOut
	err = run.Get(ctx, &out)
	return out, err
}

// TestActivitiesAnswerAsTheSDKWould runs each kind of answer through the
// real server and checks what the workflow got.
func TestActivitiesAnswerAsTheSDKWould(t *testing.T) {
	e := start(t)
	t.Run("result", func(t *testing.T) {
		out, err := e.run(t, call{Activity: "Echo", Arg: echoIn{Name: "msm", Count: 3}})
		require.NoError(t, err)
		assert.Equal(t, echoOut{Greeting: "hello msm ×3", Took: time.Second}, out)
	})
	t.Run("no result", func(t *testing.T) {
		out, err := e.run(t, call{Activity: "Nothing"})
		require.NoError(t, err)
		assert.Equal(t, echoOut{}, out)
	})
	t.Run("non-retryable error with its type", func(t *testing.T) {
		_, err := e.run(t, call{Activity: "Refuse", Arg: echoIn{Name: "web"}})
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		assert.Equal(t, "NoSuchThing", app.Type())
		assert.Equal(t, "no web here", app.Message())
		assert.True(t, app.NonRetryable())
		var cause *temporal.ApplicationError
		require.ErrorAs(t, app.Unwrap(), &cause)
		assert.Equal(t, "the cause", cause.Message())
	})
	t.Run("retryable error retried", func(t *testing.T) {
		out, err := e.run(t, call{Activity: "Flaky", Attempts: 5})
		require.NoError(t, err)
		assert.Equal(t, "third time", out.Greeting)
		assert.EqualValues(t, 3, e.calls.Load())
	})
	t.Run("retryable error out of attempts", func(t *testing.T) {
		e.calls.Store(-10)
		_, err := e.run(t, call{Activity: "Flaky", Attempts: 2})
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		assert.Equal(t, "attempt -8 failed", app.Message())
		assert.Empty(t, app.Type(), "fmt.Errorf without %w is an errors.New, left untyped as the SDK does")
		assert.False(t, app.NonRetryable())
	})
	t.Run("unknown activity type", func(t *testing.T) {
		_, err := e.run(t, call{Activity: "Missing", Attempts: 1})
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app)
		assert.Contains(t, app.Message(), "no handler for activity type Missing")
	})
}

// TestHeartbeatsKeepALongActivityAlive: an activity of 2 s with a heartbeat
// timeout of 600 ms completes, because its heartbeats (throttled, at most
// one per 480 ms) reach the server.
func TestHeartbeatsKeepALongActivityAlive(t *testing.T) {
	e := start(t)
	out, err := e.run(t, call{Activity: "Slow", Arg: echoIn{Count: 20}, Heartbeat: 600 * time.Millisecond, Attempts: 1})
	require.NoError(t, err)
	assert.Equal(t, "done", out.Greeting)
	assert.GreaterOrEqual(t, out.Took, 2*time.Second)
}

// TestATaskEndsAtItsStartToCloseTimeout: the task's context ends when its
// start-to-close timeout does, as the server times it out.
func TestATaskEndsAtItsStartToCloseTimeout(t *testing.T) {
	e := start(t)
	_, err := e.run(t, call{Activity: "Block", StartToClose: time.Second, Attempts: 1})
	var timeout *temporal.TimeoutError
	require.ErrorAs(t, err, &timeout)
	select {
	case cause := <-e.cancelled:
		assert.ErrorIs(t, cause, context.DeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("the activity's context did not end at its timeout")
	}
}

// TestCancellationReachesTheActivity: a workflow cancels a running
// activity; the activity sees it through its heartbeat's answer, and the
// workflow gets a cancellation, not a failure.
func TestCancellationReachesTheActivity(t *testing.T) {
	e := start(t)
	_, err := e.run(t, call{Activity: "Block", Heartbeat: 2 * time.Second, Attempts: 1, CancelIn: 500 * time.Millisecond})
	var canceled *temporal.CanceledError
	require.ErrorAs(t, err, &canceled)
	select {
	case cause := <-e.cancelled:
		assert.ErrorContains(t, cause, "cancelled")
	case <-time.After(5 * time.Second):
		t.Fatal("the activity did not see its cancellation")
	}
}

// TestSignalReachesTheWorkflow: a value signalled with wire arrives as the
// SDK decodes it; a signal to a workflow that does not run is an error
// that says so.
func TestSignalReachesTheWorkflow(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := e.sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wire-signal", TaskQueue: workflowQueue}, signalWorkflow)
	require.NoError(t, err)
	require.NoError(t, e.wire.Signal(ctx, "wire-signal", "greet", echoIn{Name: "from an agent", Count: 7}))
	var got echoIn
	require.NoError(t, run.Get(ctx, &got))
	assert.Equal(t, echoIn{Name: "from an agent", Count: 7}, got)

	err = e.wire.Signal(ctx, "no-such-workflow", "greet", echoIn{})
	var st *wire.StatusError
	require.ErrorAs(t, err, &st)
	assert.Contains(t, strings.ToLower(st.Error()), "not found")
}

// TestDialSaysWhereTemporalWasNotFound: nothing listens at the address.
func TestDialSaysWhereTemporalWasNotFound(t *testing.T) {
	port, err := devserver.FreePort()
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	_, err = wire.Dial(context.Background(), wire.Options{Address: addr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Temporal is not reachable at "+addr)
}

// proxy is a reverse proxy to the dev server, speaking HTTP/2 without TLS
// to it: put behind an HTTPS server, a Temporal that needs TLS.
func (e *env) proxy(t *testing.T) *httputil.ReverseProxy {
	t.Helper()
	upstream := &http.Transport{Protocols: new(http.Protocols)}
	upstream.Protocols.SetUnencryptedHTTP2(true)
	target, err := url.Parse("http://" + e.address)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = upstream
	return proxy
}

// signalThrough starts a signal workflow id, signals it name through c,
// and checks that it arrived.
func (e *env) signalThrough(ctx context.Context, t *testing.T, c *wire.Client, id, name string) {
	t.Helper()
	run, err := e.sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflowQueue}, signalWorkflow)
	require.NoError(t, err)
	require.NoError(t, c.Signal(ctx, id, "greet", echoIn{Name: name}))
	var got echoIn
	require.NoError(t, run.Get(ctx, &got))
	assert.Equal(t, name, got.Name)
}

// TestTLSAndAPIKey reaches the dev server through an HTTPS proxy that
// admits only requests bearing the API key: the agent's settings for a
// Temporal behind TLS (trusting a CA file) and an API key. A wrong key is
// refused at Dial, at once; an untrusted certificate too.
func TestTLSAndAPIKey(t *testing.T) {
	e := start(t)
	proxy := e.proxy(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("authorization") != "Bearer s3cret" {
			w.Header().Set("content-type", "application/grpc")
			w.Header().Set("grpc-status", "16")
			w.Header().Set("grpc-message", "bad%20API%20key")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	addr := strings.TrimPrefix(srv.URL, "https://")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := wire.Dial(ctx, wire.Options{Address: addr, TLS: true, CA: ca, APIKey: "s3cret", Log: quiet})
	require.NoError(t, err)
	defer c.Close()
	e.signalThrough(ctx, t, c, "wire-signal-tls", "over TLS")

	begin := time.Now()
	_, err = wire.Dial(ctx, wire.Options{Address: addr, CA: ca, APIKey: "wrong", Wait: 20 * time.Second, Log: quiet})
	require.ErrorContains(t, err, "bad API key")
	assert.Less(t, time.Since(begin), 5*time.Second, "refused credentials are not retried")

	_, err = wire.Dial(ctx, wire.Options{Address: addr, TLS: true, APIKey: "s3cret", Log: quiet})
	require.ErrorContains(t, err, "certificate", "the system roots do not trust the test CA")
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files in dir.
type testPKI struct {
	ca, cert, key string // the CA, and the client's certificate and key, as files
	pool          *x509.CertPool
	server        tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wire test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "wire test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	p := testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth)
	p.cert = write("client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)
	p.key = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

// TestMutualTLS reaches the dev server through an HTTPS proxy that
// requires a client certificate signed by its CA: with --tls-cert and
// --tls-key the agent's calls pass; without, the handshake is refused.
func TestMutualTLS(t *testing.T) {
	e := start(t)
	pki := newTestPKI(t)
	proxy := e.proxy(t)
	srv := httptest.NewUnstartedServer(proxy)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := wire.Dial(ctx, wire.Options{Address: addr, CA: pki.ca, Cert: pki.cert, Key: pki.key, Log: quiet})
	require.NoError(t, err)
	defer c.Close()
	e.signalThrough(ctx, t, c, "wire-signal-mtls", "with a client certificate")

	// Under TLS 1.3 the server checks the client's certificate after the
	// client's side of the handshake: the refusal arrives as an alert
	// ("certificate required") or as the connection closed under it.
	_, err = wire.Dial(ctx, wire.Options{Address: addr, CA: pki.ca, Log: quiet})
	require.ErrorContains(t, err, "Temporal is not reachable at "+addr, "no client certificate, no connection")
	_, err = wire.Dial(ctx, wire.Options{Address: addr, CA: pki.ca, Cert: pki.cert, Log: quiet})
	require.ErrorContains(t, err, "set --tls-cert and --tls-key")
}

// TestEncryptedPayloads: with the same codec keys, an SDK workflow and a
// wire worker and client exchange encrypted payloads (the activity's input
// and result, a signal's argument), and none of it is readable in the
// workflow's history without them.
func TestEncryptedPayloads(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cdc, err := codec.New(trust.Generate("c1"))
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sdk, err := client.Dial(client.Options{HostPort: e.address, Logger: log.NewStructuredLogger(quiet), DataConverter: starter.DataConverter(cdc)})
	require.NoError(t, err)
	defer sdk.Close()
	const wq, aq = "wire-codec-workflows", "wire-codec-activities"
	w := worker.New(sdk, wq, worker.Options{})
	w.RegisterWorkflow(callWorkflow)
	w.RegisterWorkflow(signalWorkflow)
	require.NoError(t, w.Start())
	defer w.Stop()
	wc, err := wire.Dial(ctx, wire.Options{Address: e.address, Identity: "wire-codec", Log: quiet, Codec: cdc})
	require.NoError(t, err)
	defer wc.Close()
	ww := wire.NewWorker(wc, aq)
	ww.Register("Echo", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) {
		wire.Heartbeat(ctx, "secret heartbeat "+in.Name)
		return echoOut{Greeting: "hello " + in.Name}, nil
	}))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = ww.Run(wctx) }()

	run, err := sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: wq}, callWorkflow,
		call{Activity: "Echo", Queue: aq, Arg: echoIn{Name: "s3cr3t-name", Count: 1}, Heartbeat: 5 * time.Second})
	require.NoError(t, err)
	var out echoOut
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "hello s3cr3t-name", out.Greeting)

	sig, err := sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: wq}, signalWorkflow)
	require.NoError(t, err)
	require.NoError(t, wc.Signal(ctx, sig.GetID(), "greet", echoIn{Name: "s3cr3t-signal", Count: 2}))
	var got echoIn
	require.NoError(t, sig.Get(ctx, &got))
	assert.Equal(t, echoIn{Name: "s3cr3t-signal", Count: 2}, got)

	// The raw histories, read without the codec.
	for _, id := range []string{run.GetID(), sig.GetID()} {
		it := e.sdk.GetWorkflowHistory(ctx, id, "", false, 0)
		var raw strings.Builder
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			fmt.Fprintf(&raw, "%v\n", ev)
		}
		assert.Contains(t, raw.String(), "binary/encrypted")
		assert.NotContains(t, raw.String(), "s3cr3t")
		assert.NotContains(t, raw.String(), "hello")
	}

	// An agent without the keys says what is missing.
	bare, err := wire.Dial(ctx, wire.Options{Address: e.address, Identity: "wire-bare", Log: quiet})
	require.NoError(t, err)
	defer bare.Close()
	bw := wire.NewWorker(bare, aq+"-bare")
	bw.Register("Echo", wire.Activity(func(ctx context.Context, in echoIn) (echoOut, error) { return echoOut{}, nil }))
	bctx, bstop := context.WithCancel(ctx)
	defer bstop()
	go func() { _ = bw.Run(bctx) }()
	run, err = sdk.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: wq}, callWorkflow,
		call{Activity: "Echo", Queue: aq + "-bare", Arg: echoIn{Name: "x"}, Attempts: 1})
	require.NoError(t, err)
	err = run.Get(ctx, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the payload is encrypted and this agent has no codec key")
}
