// Package devserver owns the lifecycle of a Temporal dev server run from the
// Temporal CLI binary (`temporal server start-dev`): choosing its ports,
// starting it in its own process group, waiting until its frontend answers,
// and stopping or killing it. `msm dev` and the tests use it; it never
// downloads anything, the binary is built by `make bin/temporal`.
package devserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/msm-project/msm/internal/proc"
)

const (
	// DefaultBinary is where `make bin/temporal` puts the CLI, relative to
	// the repository root.
	DefaultBinary = "bin/temporal"
	// DefaultNamespace is the namespace the dev server always creates.
	DefaultNamespace = "default"

	// stopGrace is how long Stop lets the server shut down before SIGKILL.
	stopGrace = 10 * time.Second
	// probeTimeout bounds one readiness probe, so a hung dial cannot eat the
	// whole start deadline.
	probeTimeout = 2 * time.Second
	probeEvery   = 100 * time.Millisecond
	// tailLines and maxLineBytes bound how much server output an error
	// quotes.
	tailLines    = 30
	maxLineBytes = 2048
)

// Options configures a dev server. The zero value is a headless, in-memory
// server on a free port of 127.0.0.1 running bin/temporal.
type Options struct {
	// Binary is the path to the temporal CLI; "" means DefaultBinary.
	Binary string
	// Address is host:port of the frontend; "" picks a free port on
	// 127.0.0.1.
	Address string
	// UIPort is the Web UI port; 0 runs headless.
	UIPort int
	// DBFile is the SQLite file; "" keeps state in memory. With a file, a
	// restart resumes every workflow.
	DBFile string
	// Namespace is registered at start; "" means DefaultNamespace (which
	// the dev server always creates as well).
	Namespace string
	// SearchAttributes maps name to type (Text, Keyword, Int, Double, Bool,
	// Datetime, KeywordList). They are registered on Namespace at start,
	// also when a restart on an existing DBFile brings new ones.
	SearchAttributes map[string]string
	// LogLevel is the server's log level; "" means "warn".
	LogLevel string
	// Output receives the server's stdout and stderr; nil discards them.
	Output io.Writer
	// ExtraArgs are appended to the start-dev command line, e.g.
	// "--dynamic-config-value", "system.enableActivityEagerExecution=true".
	ExtraArgs []string
}

// Server is a running dev server process.
type Server struct {
	cmd       *exec.Cmd
	address   string // dialable host:port of the frontend
	uiURL     string
	namespace string
	grace     time.Duration // Stop's wait before SIGKILL
	tail      *tail

	exited  chan struct{} // closed once the process has been reaped
	exitErr error         // cmd.Wait's result, set before exited closes

	mu       sync.Mutex
	signaled bool // we asked it to stop, so its exit status is ours
}

// Start starts a dev server and returns once its frontend answers health
// checks and Namespace has its search attributes, or fails when ctx ends
// first. ctx bounds only the start: the server runs until Stop or Kill.
// If the process exits early, the error quotes its last output lines.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	if err := checkBinary(bin); err != nil {
		return nil, err
	}
	ns := o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	attrs, err := parseSearchAttributes(o.SearchAttributes)
	if err != nil {
		return nil, err
	}

	bindIP, dialHost, port, err := resolveAddress(o.Address)
	if err != nil {
		return nil, err
	}
	// Every port the server opens is chosen here or left to the server's own
	// free-port picker, never a fixed default, so two servers can run side
	// by side. A port given by the caller must be free now: otherwise the
	// health check could be answered by whoever holds it while our process
	// exits with "address in use".
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	} else if err := checkPortFree(bindIP, port); err != nil {
		return nil, err
	}
	if o.UIPort > 0 {
		if err := checkPortFree(bindIP, o.UIPort); err != nil {
			return nil, fmt.Errorf("checking UI port, %w", err)
		}
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}

	args := []string{
		"server", "start-dev",
		"--ip", bindIP,
		"--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(httpPort),
		"--metrics-port", strconv.Itoa(metricsPort),
		"--log-level", cmp.Or(o.LogLevel, "warn"),
		"--color", "never",
		// Keep a developer's ~/.config/temporal from changing a test server.
		"--disable-config-file", "--disable-config-env",
		// One partition per task queue: every msm container has a queue of
		// its own that sees a handful of tasks, and with the server's
		// default of 4 a task scheduled before its agent first polled
		// waited ~2 s to be forwarded between partitions (make bench, B2:
		// p95 2.2 s → 0.5 s).
		"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
		"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
		// Every operator request (extend, scale, drain, provision) is an
		// update of one workflow, the Manager; past the server's default
		// of 10 in flight the rest are refused and the client retries
		// them about a second later (make bench, B10: 20 extensions at
		// once took 0.9 s to be accepted, 60 ms with 100).
		"--dynamic-config-value", "history.maxInFlightUpdates=100",
		// The history service reads each shard's transfer queue (the
		// tasks that hand a workflow or activity task to matching) at
		// most history.transferProcessorMaxPollRPS times a second, 20 by
		// default; the dev server has one shard, so every workflow and
		// activity task waited up to 50 ms to be dispatched (server
		// service/history/queues/reader.go and reader_quotas.go; measured
		// here: scheduled → started p50 44–50 ms by default, 2–4 ms with
		// 1000). Timers likewise: a timer fires within
		// timerProcessorMaxTimeShift (1 s by default) of its time, so a
		// 1 ms sleep took a second.
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--dynamic-config-value", "history.timerProcessorMaxPollRPS=1000",
		"--dynamic-config-value", `history.timerProcessorMaxTimeShift="10ms"`,
	}
	if o.UIPort > 0 {
		args = append(args, "--ui-port", strconv.Itoa(o.UIPort))
	} else {
		args = append(args, "--headless")
	}
	if o.DBFile != "" {
		args = append(args, "--db-filename", o.DBFile)
	}
	if ns != DefaultNamespace {
		args = append(args, "--namespace", ns)
	}
	for _, name := range sortedKeys(o.SearchAttributes) {
		args = append(args, "--search-attribute", name+"="+o.SearchAttributes[name])
	}
	args = append(args, o.ExtraArgs...)

	uiURL := ""
	if o.UIPort > 0 {
		uiURL = "http://" + net.JoinHostPort(dialHost, strconv.Itoa(o.UIPort))
	}
	s, err := launch(bin, args, o.Output, net.JoinHostPort(dialHost, strconv.Itoa(port)), uiURL, ns)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, attrs); err != nil {
		_ = s.Kill()
		return nil, err
	}
	return s, nil
}

// launch starts the process and its reaper; it does not wait for readiness.
func launch(bin string, args []string, output io.Writer, address, uiURL, ns string) (*Server, error) {
	t := &tail{max: tailLines}
	var out io.Writer = t
	if output != nil {
		out = io.MultiWriter(output, t)
	}
	cmd := exec.Command(bin, args...)
	if os.Getenv("USER") == "" {
		// A static (CGO_ENABLED=0) Temporal server reads the user's name
		// from $USER and will not start without it (CI, cron, containers).
		cmd.Env = append(os.Environ(), "USER=msm")
	}
	// One writer value for both streams: exec then copies them with a single
	// goroutine, so Output need not be safe for concurrent writes.
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so Stop and Kill reach anything it spawns and
	// a Ctrl-C meant for the parent does not hit it twice; and tied to this
	// process, so a parent killed with SIGKILL leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Don't let a stray holder of the output pipe block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	waited, err := proc.StartTied(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting %s, %w", bin, err)
	}
	s := &Server{
		cmd:       cmd,
		address:   address,
		uiURL:     uiURL,
		namespace: ns,
		grace:     stopGrace,
		tail:      t,
		exited:    make(chan struct{}),
	}
	go func() {
		s.exitErr = <-waited
		close(s.exited)
	}()
	return s, nil
}

// Address is the frontend's host:port, ready for client.Options.HostPort.
func (s *Server) Address() string { return s.address }

// UIURL is the Web UI's base URL, or "" when the server is headless.
func (s *Server) UIURL() string { return s.uiURL }

// Stop sends SIGTERM to the server's process group, waits up to 10 s for it
// to exit, then sends SIGKILL. It is safe to call more than once, and after
// Kill. It returns an error only when the server had already exited on its
// own with a failure.
func (s *Server) Stop() error { return s.stop(syscall.SIGTERM, s.grace) }

// Kill sends SIGKILL to the server's process group now and waits until it is
// gone: the crash that fault tests recover from, e.g. by starting a new
// server on the same DBFile.
func (s *Server) Kill() error { return s.stop(syscall.SIGKILL, 0) }

func (s *Server) stop(sig syscall.Signal, grace time.Duration) error {
	// The lock covers the decision and the signal, not the wait, so a Kill
	// is not held up by a Stop that is waiting out its grace period.
	s.mu.Lock()
	select {
	case <-s.exited:
		err := s.unexpectedExit()
		s.mu.Unlock()
		return err
	default:
	}
	s.signaled = true
	pgid := -s.cmd.Process.Pid
	err := syscall.Kill(pgid, sig)
	s.mu.Unlock()
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signaling dev server, %w", err)
	}
	if grace > 0 {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-s.exited:
			return nil
		case <-timer.C:
		}
		if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing dev server, %w", err)
		}
	}
	<-s.exited
	return nil
}

// unexpectedExit reports an exit we did not ask for; s.mu is held.
func (s *Server) unexpectedExit() error {
	if s.signaled || s.exitErr == nil {
		return nil
	}
	s.signaled = true // report it once
	return fmt.Errorf("dev server had already exited, %w%s", s.exitErr, s.tail.quote())
}

// waitReady polls until the frontend serves, the namespace exists and the
// search attributes are registered.
func (s *Server) waitReady(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	ticker := time.NewTicker(probeEvery)
	defer ticker.Stop()
	var last error
	for {
		last = s.probe(ctx, attrs)
		if last == nil {
			return nil
		}
		if errors.As(last, new(permanent)) {
			return fmt.Errorf("preparing dev server at %s, %w", s.address, last)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("dev server exited before it was ready, %w%s", exitStatus(s.exitErr), s.tail.quote())
		case <-ctx.Done():
			return fmt.Errorf("waiting for dev server at %s, %w (last probe: %v)%s", s.address, ctx.Err(), last, s.tail.quote())
		case <-ticker.C:
		}
	}
}

func (s *Server) probe(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dial(ctx, s.address, s.namespace)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("checking health, %w", err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace}); err != nil {
		return fmt.Errorf("describing namespace %s, %w", s.namespace, err)
	}
	return ensureSearchAttributes(ctx, c.OperatorService(), s.namespace, attrs)
}

// ensureSearchAttributes adds the attributes the namespace lacks. The
// --search-attribute flag alone is not enough: the dev server applies it only
// when it creates the namespace, not on a restart over an existing DBFile.
func ensureSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, ns string, want map[string]enumspb.IndexedValueType) error {
	if len(want) == 0 {
		return nil
	}
	resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return fmt.Errorf("listing search attributes, %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		have, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return permanent{fmt.Errorf("search attribute %s is %s in namespace %s, want %s", name, have, ns, typ)}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: missing}); err != nil {
		return fmt.Errorf("adding search attributes, %w", err)
	}
	return fmt.Errorf("search attributes %v added, checking again", sortedKeys(missing))
}

// permanent marks a probe error that waiting will not fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Answers reports whether a Temporal frontend answers a health check at
// address within a short timeout (or ctx, if shorter).
func Answers(ctx context.Context, address string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dial(ctx, address, DefaultNamespace)
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on. The
// port is not reserved; see reservePort for why it is unlikely to be handed
// out again soon.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port, %w", err)
	}
	defer func() { _ = l.Close() }()
	addr := l.Addr().(*net.TCPAddr)
	reservePort(l, addr)
	return addr.Port, nil
}

// reservePort connects to the listener and closes the accepted side first,
// which leaves the port in TIME_WAIT: Linux then does not hand it out again
// for port-0 binds for about a minute, while an explicit bind (Go and the
// Temporal server set SO_REUSEADDR) still succeeds. Without it, two callers
// of FreePort a moment apart can be given the same port. Best effort.
func reservePort(l net.Listener, addr *net.TCPAddr) {
	c, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		return
	}
	defer func() { _ = c.Close() }()
	a, err := l.Accept()
	if err != nil {
		return
	}
	_ = a.Close()
}

func checkBinary(bin string) error {
	fi, err := os.Stat(bin)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("temporal CLI not found at %s: run `make bin/temporal` to build it", bin)
		}
		return fmt.Errorf("checking temporal CLI at %s, %w", bin, err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("temporal CLI at %s is not an executable file: run `make bin/temporal` to build it", bin)
	}
	return nil
}

// resolveAddress splits o.Address into the IP to bind, the host clients
// dial, and the port (0: pick one). An unspecified or empty host binds all
// interfaces and is dialed on loopback.
func resolveAddress(addr string) (bindIP, dialHost string, port int, err error) {
	if addr == "" {
		return "127.0.0.1", "127.0.0.1", 0, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", 0, fmt.Errorf("parsing address %q, %w", addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", "", 0, fmt.Errorf("parsing address %q: bad port %q", addr, p)
	}
	switch host {
	case "", "0.0.0.0":
		return "0.0.0.0", "127.0.0.1", port, nil
	case "::":
		return "::", "::1", port, nil
	case "localhost":
		// The server needs an IP to bind.
		return "127.0.0.1", "127.0.0.1", port, nil
	}
	if net.ParseIP(host) == nil {
		return "", "", 0, fmt.Errorf("parsing address %q: host must be an IP or localhost", addr)
	}
	return host, host, port, nil
}

func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not free, %w", port, ip, err)
	}
	return l.Close()
}

func parseSearchAttributes(in map[string]string) (map[string]enumspb.IndexedValueType, error) {
	out := make(map[string]enumspb.IndexedValueType, len(in))
	for name, typ := range in {
		if name == "" {
			return nil, errors.New("search attribute with an empty name")
		}
		v, err := enumspb.IndexedValueTypeFromString(typ)
		if err != nil || v == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return nil, fmt.Errorf("search attribute %s has type %q, want one of Text, Keyword, Int, Double, Bool, Datetime, KeywordList", name, typ)
		}
		out[name] = v
	}
	return out, nil
}

func dial(ctx context.Context, address, namespace string) (client.Client, error) {
	return client.DialContext(ctx, client.Options{
		HostPort:  address,
		Namespace: namespace,
		Logger:    quietLogger,
	})
}

// quietLogger keeps the SDK's "no logger configured" and retry chatter out
// of our callers' output while we poll.
var quietLogger = log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// exitStatus keeps a nil Wait result from reading as "<nil>".
func exitStatus(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// tail keeps the last lines written to it, for error messages.
type tail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial strings.Builder
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			if t.partial.Len() < maxLineBytes {
				t.partial.WriteByte(b)
			}
			continue
		}
		t.lines = append(t.lines, t.partial.String())
		t.partial.Reset()
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

// quote formats the kept lines as the end of an error message.
func (t *tail) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := slices.Clone(t.lines)
	if t.partial.Len() > 0 {
		lines = append(lines, t.partial.String())
	}
	if len(lines) == 0 {
		return " (no output)"
	}
	return "; last output:\n" + strings.Join(lines, "\n")
}
