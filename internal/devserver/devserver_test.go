package devserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

const startTimeout = 90 * time.Second

// temporalBinary is the CLI built by `make bin/temporal` at the repository
// root; tests that need a real server skip without it.
func temporalBinary(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	bin := filepath.Join(filepath.Dir(file), "..", "..", "bin", "temporal")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no temporal CLI at %s: run `make bin/temporal` to build it", bin)
	}
	return bin
}

// start starts a dev server that the test kills at its end; the server's
// output goes to the test log if the test fails.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Output == nil {
		out := &syncBuffer{}
		o.Output = out
		// Registered before the Kill below, so it runs after it.
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("dev server output:\n%s", out.String())
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, o)
	require.NoError(t, err)
	t.Logf("dev server at %s ready in %s", s.Address(), time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

func dialTest(t *testing.T, s *Server, ns string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.Address(), Namespace: ns, Logger: quietLogger})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func customAttributes(t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	require.NoError(t, err)
	return resp.GetCustomAttributes()
}

func TestStartRegistersSearchAttributesAndStops(t *testing.T) {
	bin := temporalBinary(t)
	const ns = "msm-test"
	s := start(t, Options{
		Binary:           bin,
		Namespace:        ns,
		SearchAttributes: map[string]string{"MsmService": "Keyword", "MsmReplicas": "Int"},
	})
	require.Empty(t, s.UIURL(), "headless by default")
	require.True(t, Answers(context.Background(), s.Address()))

	c := dialTest(t, s, ns)
	attrs := customAttributes(t, c, ns)
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, attrs["MsmService"])
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_INT, attrs["MsmReplicas"])

	began := time.Now()
	require.NoError(t, s.Stop())
	t.Logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	require.False(t, Answers(context.Background(), s.Address()))
	require.NoError(t, s.Stop(), "second Stop")
	require.NoError(t, s.Kill(), "Kill after Stop")
}

// TestRestartOnDBFileKeepsWorkflows kills a server (a crash, not a clean
// stop) and starts a new one on the same SQLite file: the workflow started
// before is still there, and a search attribute added only at the restart
// is registered too.
func TestRestartOnDBFileKeepsWorkflows(t *testing.T) {
	bin := temporalBinary(t)
	db := filepath.Join(t.TempDir(), "temporal.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first := start(t, Options{Binary: bin, DBFile: db, SearchAttributes: map[string]string{"MsmService": "Keyword"}})
	c1 := dialTest(t, first, DefaultNamespace)
	// No worker polls this task queue, so the workflow stays running.
	run, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "msm/test/restart", TaskQueue: "nobody-polls"}, "NoSuchWorkflow")
	require.NoError(t, err)
	c1.Close()
	require.NoError(t, first.Kill())
	require.False(t, Answers(ctx, first.Address()))

	second := start(t, Options{Binary: bin, DBFile: db, SearchAttributes: map[string]string{"MsmService": "Keyword", "MsmServer": "Keyword"}})
	c2 := dialTest(t, second, DefaultNamespace)
	d, err := c2.DescribeWorkflow(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	desc := d.RawResponse
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	require.Equal(t, "NoSuchWorkflow", desc.GetWorkflowExecutionInfo().GetType().GetName())

	attrs := customAttributes(t, c2, DefaultNamespace)
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, attrs["MsmService"])
	require.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, attrs["MsmServer"], "added on restart")
	require.NoError(t, second.Stop())
}

// TestTwoServersSideBySide starts two servers at once, one with the Web UI,
// which only works if no port either opens is a fixed default.
func TestTwoServersSideBySide(t *testing.T) {
	bin := temporalBinary(t)
	uiPort, err := FreePort()
	require.NoError(t, err)

	var (
		wg      sync.WaitGroup
		servers [2]*Server
	)
	for i, o := range []Options{{Binary: bin, UIPort: uiPort}, {Binary: bin}} {
		wg.Go(func() { servers[i] = start(t, o) })
	}
	wg.Wait()
	require.NotNil(t, servers[0])
	require.NotNil(t, servers[1])
	require.NotEqual(t, servers[0].Address(), servers[1].Address())
	for _, s := range servers {
		require.True(t, Answers(context.Background(), s.Address()))
	}

	require.Equal(t, "http://127.0.0.1:"+strconv.Itoa(uiPort), servers[0].UIURL())
	require.Eventually(t, func() bool {
		resp, err := http.Get(servers[0].UIURL())
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "Web UI answers")

	// Stopping one leaves the other running.
	require.NoError(t, servers[0].Stop())
	require.True(t, Answers(context.Background(), servers[1].Address()))
	require.NoError(t, servers[1].Stop())
}

func TestStartFailsClearly(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	// A fake CLI that fails the way a real one does on a bad flag.
	failing := fakeCLI(t, dir, "failing", `echo "starting"; echo "Error: can't set frontend port: address already in use" >&2; exit 1`)
	valid := fakeCLI(t, dir, "valid", `exit 0`)

	// Something is listening: a caller-chosen port must be free.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = busy.Close() }()

	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{name: "missing binary", o: Options{Binary: filepath.Join(dir, "nope", "temporal")},
			want: []string{"temporal CLI not found at " + filepath.Join(dir, "nope", "temporal"), "run `make bin/temporal`"}},
		{name: "not executable", o: Options{Binary: notExec},
			want: []string{"not an executable file", "make bin/temporal"}},
		{name: "directory", o: Options{Binary: dir},
			want: []string{"not an executable file"}},
		{name: "exits early", o: Options{Binary: failing},
			want: []string{"dev server exited before it was ready", "exit status 1", "last output:", "starting", "address already in use"}},
		{name: "bad search attribute type", o: Options{Binary: valid, SearchAttributes: map[string]string{"X": "Strings"}},
			want: []string{`search attribute X has type "Strings"`}},
		{name: "bad address", o: Options{Binary: valid, Address: "localhost"},
			want: []string{`parsing address "localhost"`}},
		{name: "host not an IP", o: Options{Binary: valid, Address: "example.com:7233"},
			want: []string{"host must be an IP"}},
		{name: "port in use", o: Options{Binary: valid, Address: busy.Addr().String()},
			want: []string{"is not free"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := Start(ctx, tc.o)
			require.Nil(t, s)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestStartGivesUpWithContext: a process that never answers is killed when
// ctx ends, and the error says what was last seen.
func TestStartGivesUpWithContext(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	hang := fakeCLI(t, dir, "hang", fmt.Sprintf(`echo $$ > %q; echo "still booting"; exec sleep 600`, pidFile))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Options{Binary: hang})
	require.ErrorContains(t, err, "waiting for dev server")
	require.ErrorContains(t, err, context.DeadlineExceeded.Error())
	require.ErrorContains(t, err, "still booting")

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid := strings.TrimSpace(string(b))
	require.NotEmpty(t, pid)
	require.False(t, alive(pid), "process %s is gone", pid)
}

// TestStopEscalates: a server (and its child) that ignores SIGTERM is killed
// once the grace period is over.
func TestStopEscalates(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	stubborn := fakeCLI(t, dir, "stubborn", fmt.Sprintf(`trap '' TERM; sleep 600 & echo $! > %q; wait`, pidFile))
	s := startUnready(t, stubborn)
	s.grace = 300 * time.Millisecond
	var child string
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(pidFile) // the shell may not have written it yet
		child = strings.TrimSpace(string(b))
		return strings.HasSuffix(string(b), "\n")
	}, 5*time.Second, 10*time.Millisecond)

	began := time.Now()
	require.NoError(t, s.Stop())
	require.GreaterOrEqual(t, time.Since(began), s.grace, "waited for the grace period")
	require.Eventually(t, func() bool {
		return !alive(child)
	}, 5*time.Second, 10*time.Millisecond, "child %s in the group is gone too", child)
}

// TestKillDuringStop: Kill does not wait out a Stop's grace period.
func TestKillDuringStop(t *testing.T) {
	dir := t.TempDir()
	s := startUnready(t, fakeCLI(t, dir, "stubborn", `trap '' TERM; echo up; while :; do sleep 0.05; done`))
	require.Eventually(t, func() bool { return strings.Contains(s.tail.quote(), "up") }, 5*time.Second, 10*time.Millisecond)

	began := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }() // would wait the full 10 s grace
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, s.Kill())
	require.NoError(t, <-stopped)
	require.Less(t, time.Since(began), 5*time.Second)
}

// TestStopReportsCrash: Stop on a server that died by itself says so, once.
func TestStopReportsCrash(t *testing.T) {
	dir := t.TempDir()
	crash := fakeCLI(t, dir, "crash", `echo "panic: boom" >&2; exit 2`)
	s := startUnready(t, crash)
	<-s.exited
	err := s.Stop()
	require.ErrorContains(t, err, "dev server had already exited")
	require.ErrorContains(t, err, "panic: boom")
	require.NoError(t, s.Stop(), "reported once")
}

func TestAnswersNothingThere(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	began := time.Now()
	require.False(t, Answers(context.Background(), "127.0.0.1:"+strconv.Itoa(port)))
	require.Less(t, time.Since(began), probeTimeout+time.Second)
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := FreePort()
		require.NoError(t, err)
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err, "port %d is bindable", p)
		require.NoError(t, l.Close())
	}
}

func TestResolveAddress(t *testing.T) {
	tests := []struct {
		in                 string
		wantBind, wantDial string
		wantPort           int
		wantErr            bool
	}{
		{in: "", wantBind: "127.0.0.1", wantDial: "127.0.0.1"},
		{in: "127.0.0.1:7233", wantBind: "127.0.0.1", wantDial: "127.0.0.1", wantPort: 7233},
		{in: "localhost:7233", wantBind: "127.0.0.1", wantDial: "127.0.0.1", wantPort: 7233},
		{in: ":7233", wantBind: "0.0.0.0", wantDial: "127.0.0.1", wantPort: 7233},
		{in: "0.0.0.0:0", wantBind: "0.0.0.0", wantDial: "127.0.0.1"},
		{in: "[::]:7233", wantBind: "::", wantDial: "::1", wantPort: 7233},
		{in: "10.1.2.3:7233", wantBind: "10.1.2.3", wantDial: "10.1.2.3", wantPort: 7233},
		{in: "7233", wantErr: true},
		{in: "127.0.0.1:http", wantErr: true},
		{in: "127.0.0.1:70000", wantErr: true},
		{in: "temporal:7233", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			bind, dial, port, err := resolveAddress(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantBind, bind)
			require.Equal(t, tc.wantDial, dial)
			require.Equal(t, tc.wantPort, port)
		})
	}
}

func TestParseSearchAttributes(t *testing.T) {
	got, err := parseSearchAttributes(map[string]string{"A": "Keyword", "B": "KeywordList", "C": "INDEXED_VALUE_TYPE_INT"})
	require.NoError(t, err)
	require.Equal(t, map[string]enumspb.IndexedValueType{
		"A": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"B": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		"C": enumspb.INDEXED_VALUE_TYPE_INT,
	}, got)
	for _, bad := range []map[string]string{{"A": "keyword"}, {"A": "Unspecified"}, {"": "Int"}} {
		_, err := parseSearchAttributes(bad)
		require.Error(t, err, "%v", bad)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 3}
	require.Equal(t, " (no output)", tl.quote())
	_, _ = tl.Write([]byte("one\ntwo\nthr"))
	_, _ = tl.Write([]byte("ee\nfour\nfi"))
	require.Equal(t, "; last output:\ntwo\nthree\nfour\nfi", tl.quote())
	_, _ = tl.Write([]byte(strings.Repeat("x", 3*maxLineBytes) + "\n"))
	require.Equal(t, "; last output:\nthree\nfour\nfi"+strings.Repeat("x", maxLineBytes-2), tl.quote(), "a long line is cut")
}

// alive reports whether a process runs; a zombie waiting for its reaper
// (PID 1 of a container may be slow at it) counts as gone.
func alive(pid string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// fakeCLI writes an executable shell script standing in for the temporal CLI.
func fakeCLI(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

// startUnready starts a fake CLI as a Server without waiting for readiness.
func startUnready(t *testing.T, bin string) *Server {
	t.Helper()
	s, err := launch(bin, nil, nil, "127.0.0.1:1", "", DefaultNamespace)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

// syncBuffer collects server output; the test reads it while the copying
// goroutine may still write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
