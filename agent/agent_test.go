package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/agent"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/wire"
	"github.com/msm-project/msm/workflows/agentapi"
)

// demo is the example MicroService, built once for the package; shim is
// msm-agent, whose exec-confined confines a service.
var demo, shim string

// binEnv names a directory that holds demo and msm-agent already built
// (in the VM of TestConfinementInAVM, which has no Go toolchain).
const binEnv = "MSM_AGENT_TEST_BIN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(binEnv); dir != "" {
		demo, shim = filepath.Join(dir, "demo"), filepath.Join(dir, "msm-agent")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "msm-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demo = filepath.Join(dir, "demo")
	shim = filepath.Join(dir, "msm-agent")
	for _, b := range [][2]string{{demo, "../examples/demo"}, {shim, "../cmd/msm-agent"}} {
		build := exec.Command("go", "build", "-o", b[0], b[1])
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b[1], err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// Confined services run as users of their own: they must reach both.
	_ = os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loadTimeout bounds a load in tests that expect it to finish.
const loadTimeout = 20 * time.Second

// serial makes every test's service name unique, so that processes are
// counted and cleaned up per test.
var serial atomic.Int64

func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d-%d", base, os.Getpid(), serial.Add(1))
}

func newAgent(t *testing.T) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{
		Container: "c1", Server: "s1", Manager: "test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	return a
}

// freePort returns a port that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// demoService is the demo as a catalog entry, with templated args.
func demoService(name string, extra ...string) catalog.Service {
	return catalog.Service{
		Name:    name,
		Command: demo,
		Args:    append([]string{"--port={{.Port}}", "--name={{.Service}}"}, extra...),
		Health:  catalog.HealthCheck{Path: "/healthz", Timeout: time.Second},
	}
}

// load runs LoadService as the agent's worker does: in a context that
// ends when the worker stops (bg, if not nil) or at the activity's
// timeout. Without bg, the load times out after loadTimeout, so that a load
// that never ends fails the test instead of hanging it.
func load(t *testing.T, a *agent.Agent, in agentapi.LoadServiceInput, bg context.Context) (agentapi.LoadServiceResult, error) {
	t.Helper()
	if bg == nil {
		var cancel context.CancelFunc
		bg, cancel = context.WithTimeout(context.Background(), loadTimeout)
		defer cancel()
	}
	return a.LoadService(bg, in)
}

// procs returns the PIDs of live processes whose environment has
// MSM_SERVICE=service and, if program is not empty, whose argv[0] is
// program. Only this user's processes are readable, which is all we start.
func procs(t *testing.T, service, program string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		environ, err := os.ReadFile(dir + "/environ")
		if err != nil || !hasEntry(environ, "MSM_SERVICE="+service) {
			continue
		}
		if program != "" {
			cmdline, err := os.ReadFile(dir + "/cmdline")
			if err != nil {
				continue
			}
			if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); string(argv0) != program {
				continue
			}
		}
		if zombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func hasEntry(nulSeparated []byte, entry string) bool {
	for _, e := range bytes.Split(nulSeparated, []byte{0}) {
		if string(e) == entry {
			return true
		}
	}
	return false
}

// zombie reports whether pid has exited (or is gone) but may not be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// cleanup kills, at the end of the test, whatever still runs as service.
func cleanup(t *testing.T, service string) {
	t.Cleanup(func() {
		for _, pid := range procs(t, service, "") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		require.Eventually(t, func() bool { return len(procs(t, service, "")) == 0 },
			5*time.Second, 20*time.Millisecond, "processes of %s left after the test", service)
	})
}

type identity struct {
	Service string `json:"service"`
	Port    int    `json:"port"`
	PID     int    `json:"pid"`
}

func whoAnswers(t *testing.T, port int) identity {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var id identity
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&id))
	return id
}

func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	require.NoError(t, err)
	env := map[string]string{}
	for _, e := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(e), "="); ok {
			_, dup := env[k]
			require.False(t, dup, "%s is set twice in the service's environment", k)
			env[k] = v
		}
	}
	return env
}

// appError is err as the agent's worker reports it: an application error
// with a type, retryable or not (internal/wire's tests hold that the
// workflow sees the same).
func appError(t *testing.T, err error) *wire.Error {
	t.Helper()
	require.Error(t, err)
	var app *wire.Error
	require.True(t, errors.As(err, &app), "want an application error, got %T: %v", err, err)
	return app
}

func TestLoadServiceStartsTheServiceHealthy(t *testing.T) {
	a := newAgent(t)
	name := uniqueName("web")
	cleanup(t, name)
	port := freePort(t)

	begin := time.Now()
	res, err := load(t, a, agentapi.LoadServiceInput{
		Container: "c1", Server: "s1", Address: "127.0.0.1", Port: port, Service: demoService(name),
	}, nil)
	require.NoError(t, err)
	require.True(t, res.Healthy)
	require.False(t, res.Attached)
	require.Positive(t, res.PID)
	require.Positive(t, res.Took)
	require.LessOrEqual(t, res.Took, time.Since(begin))

	id := whoAnswers(t, port)
	require.Equal(t, identity{Service: name, Port: port, PID: res.PID}, id,
		"the service runs with the rendered --name and --port")
	require.Equal(t, []int{res.PID}, procs(t, name, demo))
}

// TestLoadServiceTwiceAttaches: a retried load finds the running service and
// starts nothing new.
func TestLoadServiceTwiceAttaches(t *testing.T) {
	a := newAgent(t)
	name := uniqueName("web")
	cleanup(t, name)
	in := agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: freePort(t), Service: demoService(name)}

	first, err := load(t, a, in, nil)
	require.NoError(t, err)
	require.False(t, first.Attached)
	for i := range 2 {
		again, err := load(t, a, in, nil)
		require.NoError(t, err, "load #%d", i+2)
		require.Equal(t, first.PID, again.PID)
		require.True(t, again.Attached)
		require.True(t, again.Healthy)
	}
	require.Equal(t, []int{first.PID}, procs(t, name, demo), "one process for three loads")
}

// TestLoadServiceConcurrentRetries: an attempt that the server timed out may
// still run when the retry arrives on the same agent. Both must end with one
// healthy process, the same for both.
func TestLoadServiceConcurrentRetries(t *testing.T) {
	a := newAgent(t)
	name := uniqueName("web")
	cleanup(t, name)
	in := agentapi.LoadServiceInput{
		Container: "c1", Server: "s1", Port: freePort(t),
		Service: demoService(name, "--startup-delay=300ms"),
	}

	const n = 3
	var wg sync.WaitGroup
	results := make([]agentapi.LoadServiceResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = load(t, a, in, nil) })
	}
	wg.Wait()
	attached := 0
	for i := range n {
		require.NoError(t, errs[i], "load #%d", i)
		require.Equal(t, results[0].PID, results[i].PID, "load #%d", i)
		if results[i].Attached {
			attached++
		}
	}
	require.Equal(t, n-1, attached, "one load starts the service, the others attach")
	require.Equal(t, []int{results[0].PID}, procs(t, name, demo))
	require.Equal(t, results[0].PID, whoAnswers(t, in.Port).PID)
}

func TestLoadServiceFails(t *testing.T) {
	tests := []struct {
		name string
		// running, if set, is loaded first and must keep running.
		running func(name string, port int) agentapi.LoadServiceInput
		service func(t *testing.T, name string) catalog.Service
		// port, if set, is the port of the second load given the first's.
		port func(t *testing.T, first int) int
		// bg makes the worker's background context for the activity.
		bg            func() (context.Context, context.CancelFunc)
		wantType      string // "" for a retryable error
		wantTimeout   bool
		wantInMsg     []string
		startsProcess bool // the failed load started a process that must be gone
		leavesOrphan  bool // a grandchild outside the agent's reach survives
	}{
		{
			name: "another service is loaded",
			running: func(name string, port int) agentapi.LoadServiceInput {
				return agentapi.LoadServiceInput{Container: "c1", Port: port, Service: demoService(name + "-running")}
			},
			service:   func(_ *testing.T, name string) catalog.Service { return demoService(name) },
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"already runs", "-running on port", "unload it first"},
		},
		{
			name: "the same service on another port",
			running: func(name string, port int) agentapi.LoadServiceInput {
				return agentapi.LoadServiceInput{Container: "c1", Port: port, Service: demoService(name)}
			},
			service:   func(_ *testing.T, name string) catalog.Service { return demoService(name) },
			port:      func(t *testing.T, _ int) int { return freePort(t) },
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"already runs", "unload it first"},
		},
		{
			name: "the command does not exist",
			service: func(t *testing.T, name string) catalog.Service {
				s := demoService(name)
				s.Command = filepath.Join(t.TempDir(), "no-such-service")
				return s
			},
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"no-such-service", "check the service's command in the catalog"},
		},
		{
			name: "the command is not on PATH",
			service: func(_ *testing.T, name string) catalog.Service {
				s := demoService(name)
				s.Command = "msm-no-such-service"
				return s
			},
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"msm-no-such-service", "check the service's command in the catalog"},
		},
		{
			name: "an argument does not render",
			service: func(_ *testing.T, name string) catalog.Service {
				s := demoService(name)
				s.Args = []string{"--port={{.Nope}}"}
				return s
			},
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"rendering the command of", "Nope"},
		},
		{
			name: "it exits before it is healthy",
			service: func(_ *testing.T, name string) catalog.Service {
				return catalog.Service{
					Name: name, Command: "/bin/sh", Args: []string{"-c", "echo starting; echo boom >&2; exit 3"},
					Health: catalog.HealthCheck{Path: "/healthz"},
				}
			},
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"exited before it was healthy", "exit status 3", "boom"},
		},
		{
			// The background child inherits the output pipes and outlives
			// the shell; the exit must still be seen at once.
			name: "it exits and leaves a child holding its output",
			service: func(_ *testing.T, name string) catalog.Service {
				return catalog.Service{
					Name: name, Command: "/bin/sh", Args: []string{"-c", "sleep 30 & echo boom; exit 3"},
					Health: catalog.HealthCheck{Path: "/healthz"},
				}
			},
			bg: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Second)
			},
			wantType:     agentapi.ErrLoadFailed,
			wantInMsg:    []string{"exited before it was healthy", "exit status 3", "boom"},
			leavesOrphan: true,
		},
		{
			name: "the demo exits: its port is taken",
			service: func(t *testing.T, name string) catalog.Service {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
				s := demoService(name)
				s.Args = []string{"--port=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
				return s
			},
			wantType:  agentapi.ErrLoadFailed,
			wantInMsg: []string{"exited before it was healthy", "exit status 1", "address already in use"},
		},
		{
			name: "it never becomes healthy: the activity times out",
			service: func(_ *testing.T, name string) catalog.Service {
				return catalog.Service{Name: name, Command: "sleep", Args: []string{"30"}, Health: catalog.HealthCheck{Path: "/healthz"}}
			},
			bg: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 700*time.Millisecond)
			},
			wantTimeout:   true,
			startsProcess: true,
		},
		{
			name: "it never becomes healthy: the activity is cancelled",
			service: func(_ *testing.T, name string) catalog.Service {
				return catalog.Service{Name: name, Command: "sleep", Args: []string{"30"}, Health: catalog.HealthCheck{Path: "/healthz"}}
			},
			bg: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(700*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantInMsg:     []string{"waiting for", "/healthz", "context canceled"},
			startsProcess: true,
		},
		{
			name: "it answers the health check with an error status",
			service: func(_ *testing.T, name string) catalog.Service {
				s := demoService(name)
				s.Health.Path = "/no-such-path"
				return s
			},
			bg: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 700*time.Millisecond)
			},
			wantTimeout:   true,
			startsProcess: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t)
			name := uniqueName("svc")
			cleanup(t, name)
			cleanup(t, name+"-running")
			port := freePort(t)

			var running agentapi.LoadServiceResult
			if tc.running != nil {
				var err error
				running, err = load(t, a, tc.running(name, port), nil)
				require.NoError(t, err)
			}
			in := agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: port, Service: tc.service(t, name)}
			if tc.port != nil {
				in.Port = tc.port(t, port)
			}
			var bg context.Context
			if tc.bg != nil {
				var cancel context.CancelFunc
				bg, cancel = tc.bg()
				defer cancel()
			}
			var seen atomic.Bool // the process of the load was seen running
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					if len(procs(t, name, "")) > 0 && tc.running == nil {
						seen.Store(true)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()

			begin := time.Now()
			_, err := load(t, a, in, bg)
			took := time.Since(begin)
			close(stop)
			<-watched
			require.Error(t, err)
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)

			switch {
			case tc.wantTimeout:
				require.ErrorIs(t, err, context.DeadlineExceeded, "want a timeout")
			case tc.wantType != "":
				app := appError(t, err)
				require.Equal(t, tc.wantType, app.Type)
				require.True(t, app.NonRetryable, "a load that cannot work must not be retried")
			default:
				var app *wire.Error
				require.False(t, errors.As(err, &app) && app.NonRetryable, "a load cut short may work when retried")
			}
			for _, s := range tc.wantInMsg {
				require.Contains(t, err.Error(), s)
			}
			if tc.startsProcess {
				require.True(t, seen.Load(), "the service was started before the load failed")
			}
			if !tc.leavesOrphan {
				left := slices.DeleteFunc(procs(t, name, ""), func(pid int) bool { return pid == running.PID })
				require.Empty(t, left, "a failed load leaves no process behind")
			}

			if tc.running != nil {
				require.Equal(t, running.PID, whoAnswers(t, port).PID, "the running service keeps running")
				require.Contains(t, err.Error(), tc.running(name, port).Service.Name)
			}
		})
	}
}

// TestLoadServiceEnvironment: the leased port, the service name and the
// catalog's rendered env values reach the service.
func TestLoadServiceEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(name string, port int) map[string]string
		wantOut []string // keys that must not be set
	}{
		{
			name: "PORT and MSM_SERVICE",
			want: func(name string, port int) map[string]string {
				return map[string]string{"PORT": strconv.Itoa(port), "MSM_SERVICE": name}
			},
		},
		{
			name: "catalog values are rendered",
			env: map[string]string{
				"GREETING": "hello {{.Service}} on {{.Port}} in {{.Container}} at {{.Server}}",
				"PLAIN":    "as is",
			},
			want: func(name string, port int) map[string]string {
				return map[string]string{
					"PORT": strconv.Itoa(port), "MSM_SERVICE": name,
					"GREETING": fmt.Sprintf("hello %s on %d in c1 at s1", name, port),
					"PLAIN":    "as is",
				}
			},
		},
		{
			// The agent's own environment (its Temporal settings, a
			// credential the node was started with) stays with it.
			name:    "nothing of the agent's environment but the basics",
			want:    func(name string, port int) map[string]string { return map[string]string{"MSM_SERVICE": name} },
			wantOut: []string{"MSM_AGENT_TEST_SECRET", "TEMPORAL_ADDRESS"},
		},
		{
			name: "the catalog may override PORT",
			env:  map[string]string{"PORT": "{{.Port}}", "EXTRA": "1"},
			want: func(name string, port int) map[string]string {
				return map[string]string{"PORT": strconv.Itoa(port), "MSM_SERVICE": name, "EXTRA": "1"}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MSM_AGENT_TEST_SECRET", "hunter2")
			t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")
			a := newAgent(t)
			name := uniqueName("env")
			cleanup(t, name)
			port := freePort(t)
			s := demoService(name)
			// No args: the demo takes its port and name from PORT and
			// MSM_SERVICE, so it is healthy only if they arrive.
			s.Args = nil
			s.Env = tc.env
			res, err := load(t, a, agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: port, Service: s}, nil)
			require.NoError(t, err)
			require.Equal(t, identity{Service: name, Port: port, PID: res.PID}, whoAnswers(t, port))

			env := environOf(t, res.PID)
			for k, v := range tc.want(name, port) {
				require.Equal(t, v, env[k], "env %s", k)
			}
			for _, k := range tc.wantOut {
				require.NotContains(t, env, k, "the MicroService must not see %s", k)
			}
		})
	}
}

// TestLoadAfterExit: once the loaded service has exited, the container can
// load again (a crashed service is not "already running").
func TestLoadAfterExit(t *testing.T) {
	a := newAgent(t)
	name := uniqueName("web")
	cleanup(t, name)
	in := agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: freePort(t), Service: demoService(name)}
	first, err := load(t, a, in, nil)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(first.PID, syscall.SIGKILL))
	require.Eventually(t, func() bool { return len(procs(t, name, demo)) == 0 }, 5*time.Second, 20*time.Millisecond)

	// A different service may take the container now, and it starts anew.
	other := uniqueName("api")
	cleanup(t, other)
	in2 := agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: freePort(t), Service: demoService(other)}
	var second agentapi.LoadServiceResult
	require.Eventually(t, func() bool {
		second, err = load(t, a, in2, nil)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "loading after the first service died: %v", err)
	require.False(t, second.Attached)
	require.NotEqual(t, first.PID, second.PID)
	require.Equal(t, other, whoAnswers(t, in2.Port).Service)
}

// TestLoadServiceOnAPortTakenSinceTheStart: a waiting container holds no
// socket, so another process may take its leased port; the load then fails
// with PortInUse (the Manager blocks the port and re-places the container)
// and starts nothing.
func TestLoadServiceOnAPortTakenSinceTheStart(t *testing.T) {
	a := newAgent(t)
	name := uniqueName("taken")
	cleanup(t, name)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = load(t, a, agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: port, Service: demoService(name)}, nil)
	app := appError(t, err)
	assert.Equal(t, agentapi.ErrPortInUse, app.Type)
	assert.True(t, app.NonRetryable)
	assert.Contains(t, app.Error(), strconv.Itoa(port))
	assert.Empty(t, procs(t, name, ""), "nothing started")
}

func TestReadyAnswersForItsOwnContainerOnly(t *testing.T) {
	a := newAgent(t)
	res, err := a.Ready(context.Background(), "c1")
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), res.PID)
	_, err = a.Ready(context.Background(), "c2")
	app := appError(t, err)
	assert.Equal(t, "WrongContainer", app.Type)
	assert.True(t, app.NonRetryable)
}

// TestLoadServiceRunsTheImagesCommand: in a container of a service's own
// image, a service with no command runs the image's entrypoint with its
// cmd, or with the catalog's args in the cmd's place, in the image's
// environment under msm's and the catalog's; without such an image it
// fails to load, saying what to set.
func TestLoadServiceRunsTheImagesCommand(t *testing.T) {
	image := &agentapi.ImageCommand{Entrypoint: []string{demo, "--listen=127.0.0.1"}, Cmd: []string{"--name=from-the-image"},
		Env: []string{"IMAGE_VAR=image", "PORT=1", "SHARED=image"}}
	tests := []struct {
		name     string
		image    *agentapi.ImageCommand
		args     []string
		wantName string // "" is the service's name
		wantErr  string
	}{
		{name: "entrypoint and cmd", image: image, wantName: "from-the-image"},
		{name: "the catalog's args replace the cmd", image: image, args: []string{"--name={{.Service}}"}},
		{name: "no image: no command to run", wantErr: "names no command, and container c1 runs no image of its own that has one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := agent.New(agent.Config{Container: "c1", Server: "s1", Manager: "test",
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Image: tc.image})
			require.NoError(t, err)
			name := uniqueName("image")
			cleanup(t, name)
			port := freePort(t)
			s := demoService(name)
			s.Command, s.Args = "", tc.args
			s.Env = map[string]string{"SHARED": "catalog"}
			res, err := load(t, a, agentapi.LoadServiceInput{Container: "c1", Server: "s1", Port: port, Service: s}, nil)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := tc.wantName
			if want == "" {
				want = name
			}
			require.Equal(t, identity{Service: want, Port: port, PID: res.PID}, whoAnswers(t, port))
			env := environOf(t, res.PID)
			assert.Equal(t, "image", env["IMAGE_VAR"])
			assert.Equal(t, "catalog", env["SHARED"], "the catalog's env over the image's")
			assert.Equal(t, strconv.Itoa(port), env["PORT"], "the leased port over the image's PORT")
		})
	}
}
