package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/cli"
	"github.com/msm-project/msm/internal/devserver"
)

// result is what one run of the CLI showed.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// run runs the real CLI in-process with env as its whole environment, so
// nothing from the test's own environment leaks in.
func run(env map[string]string, args []string) result {
	var stdout, stderr bytes.Buffer
	began := time.Now()
	code := cli.Main(args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(began)}
}

func (r result) log(t *testing.T, args []string) {
	t.Helper()
	t.Logf("msm %s → %d in %s\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// msm runs the CLI and logs what it showed.
func msm(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	r := run(env, args)
	r.log(t, args)
	return r
}

// msmWithin is msm for a run that must end within limit: if it does not,
// the test fails then, rather than when a 2-minute dial gives up. (The
// straggling run is left behind; it never touches t.)
func msmWithin(t *testing.T, limit time.Duration, env map[string]string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- run(env, args) }()
	select {
	case r := <-done:
		r.log(t, args)
		return r
	case <-time.After(limit):
		t.Fatalf("msm %s still running after %s", strings.Join(args, " "), limit)
		return result{}
	}
}

// closedAddress is a 127.0.0.1 address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestUsage(t *testing.T) {
	commands := []string{"msm dev", "msm worker", "msm node", "msm agent", "msm status", "msm catalog validate FILE"}
	tests := []struct {
		name       string
		args       []string
		code       int
		onStdout   bool   // usage goes to stdout (asked for) or stderr (a mistake)
		firstLine  string // of the stream the usage is on
		mustNotSay string
	}{
		{name: "no args", args: nil, code: 2, firstLine: "msm — MicroService Manager on Temporal"},
		{name: "help", args: []string{"help"}, code: 0, onStdout: true, firstLine: "msm — MicroService Manager on Temporal"},
		{name: "-h", args: []string{"-h"}, code: 0, onStdout: true, firstLine: "msm — MicroService Manager on Temporal"},
		{name: "--help", args: []string{"--help"}, code: 0, onStdout: true, firstLine: "msm — MicroService Manager on Temporal"},
		{name: "unknown command", args: []string{"frobnicate", "x"}, code: 2, firstLine: `msm: unknown command "frobnicate"`},
		{name: "flag as command", args: []string{"--catalog", "x.yaml"}, code: 2, firstLine: `msm: unknown command "--catalog"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := msm(t, nil, tc.args...)
			assert.Equal(t, tc.code, r.code)
			shown, other := r.stderr, r.stdout
			if tc.onStdout {
				shown, other = r.stdout, r.stderr
			}
			assert.Empty(t, other)
			first, _, _ := strings.Cut(shown, "\n")
			assert.Equal(t, tc.firstLine, first)
			assert.Contains(t, shown, "Usage:")
			for _, c := range commands {
				assert.Contains(t, shown, "  "+c, "usage lists %s", c)
			}
			for _, v := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "MSM_MANAGER"} {
				assert.Contains(t, shown, v)
			}
		})
	}
}

// TestCommandUsageErrors: a command used wrongly exits 2 before it does
// anything (no dial, no catalog read) and says what was missing.
func TestCommandUsageErrors(t *testing.T) {
	// Were any of these to dial Temporal, they would find nothing here,
	// and wait or say so.
	env := map[string]string{"TEMPORAL_ADDRESS": closedAddress(t)}
	tests := []struct {
		name string
		args []string
		says []string
	}{
		{"catalog alone", []string{"catalog"}, []string{"usage: msm catalog validate FILE"}},
		{"catalog unknown verb", []string{"catalog", "check", "x.yaml"}, []string{"usage: msm catalog validate FILE"}},
		{"catalog validate without FILE", []string{"catalog", "validate"}, []string{"usage: msm catalog validate FILE"}},
		{"catalog validate two FILEs", []string{"catalog", "validate", "a.yaml", "b.yaml"}, []string{"usage: msm catalog validate FILE"}},
		{"catalog validate unknown flag", []string{"catalog", "validate", "--strict", "a.yaml"}, []string{"flag provided but not defined: -strict"}},
		{"worker without --catalog", []string{"worker"}, []string{"--catalog", "MSM_CATALOG"}},
		{"node without --server", []string{"node"}, []string{"--server", "MSM_SERVER"}},
		{"agent without --container", []string{"agent", "--server", "s1"}, []string{"--container"}},
		{"status -o yaml", []string{"status", "-o", "yaml"}, []string{`"yaml"`, "table", "json"}},
		{"status unknown flag", []string{"status", "--format", "json"}, []string{"flag provided but not defined: -format"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := msmWithin(t, 5*time.Second, env, tc.args...)
			assert.Equal(t, 2, r.code)
			assert.Empty(t, r.stdout)
			for _, s := range tc.says {
				assert.Contains(t, r.stderr, s)
			}
			assert.NotContains(t, r.stderr, "not reachable")
		})
	}
}

func TestCatalogValidateExample(t *testing.T) {
	r := msm(t, nil, "catalog", "validate", "../../examples/catalog.yaml")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "../../examples/catalog.yaml: ok (2 services, 2 servers)\n", r.stdout)
	assert.Empty(t, r.stderr)
}

// good is a valid catalog; the bad ones below change one thing in it.
const good = `manager:
  kind: standalone
  servers:
    - {name: s1, address: 127.0.0.1, slots: 4, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    args: ["--port={{.Port}}"]
    replicas: {min: 1, max: 2}
`

func TestCatalogValidateProblems(t *testing.T) {
	require.Equal(t, 0, msm(t, nil, "catalog", "validate", writeFile(t, t.TempDir(), "good.yaml", good)).code, "the base catalog must be valid")
	tests := []struct {
		name  string
		yaml  string
		where string // "line: field: " the problem is reported at
		says  string // part of its message
	}{
		{
			name: "unknown field",
			yaml: good + "    helth: {path: /ready}\n",
			// line 10 is the misspelt key
			where: "10: services[0].helth: ", says: `unknown field "helth"; did you mean "health"?`,
		},
		{
			name:  "duplicate service",
			yaml:  good + "  - name: web\n    command: bin/demo\n    replicas: {min: 1, max: 2}\n",
			where: "10: services[1].name: ", says: `"web" is also the name of services[0] (line 6)`,
		},
		{
			name:  "min greater than max",
			yaml:  strings.Replace(good, "{min: 1, max: 2}", "{min: 3, max: 2}", 1),
			where: "9: services[0].replicas: ", says: "min 3 is greater than max 2",
		},
		{
			name: "overlapping port ranges on one address",
			yaml: strings.Replace(good, "services:",
				"    - {name: s2, address: localhost, slots: 4, ports: 21050-21149}\nservices:", 1),
			where: "5: manager.servers[1].ports: ", says: "21050-21099",
		},
		{
			name: "missing command",
			yaml: strings.Replace(good, "    command: bin/demo\n", "", 1),
			// a field left out takes the line of the nearest field written
			where: "6: services[0].command: ", says: "needs a command",
		},
		{
			name:  "template error",
			yaml:  strings.Replace(good, "{{.Port}}", "{{.Prot}}", 1),
			where: "8: services[0].args[0]: ", says: "unknown template field .Prot",
		},
		{
			name:  "template syntax",
			yaml:  strings.Replace(good, "{{.Port}}", "{{.Port", 1),
			where: "8: services[0].args[0]: ", says: "invalid template: unclosed action",
		},
		{
			name:  "duration without unit",
			yaml:  good + "    health: {interval: 5}\n",
			where: "10: services[0].health.interval: ", says: "5 has no unit",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "bad.yaml", tc.yaml)
			r := msm(t, nil, "catalog", "validate", path)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			require.GreaterOrEqual(t, len(lines), 2, "a problem and the count")
			// The count comes last; validate starts nothing, so says nothing about it.
			last := lines[len(lines)-1]
			assert.Regexp(t, `^`+regexp.QuoteMeta(path)+`: \d+ problems?$`, last)
			found := false
			for _, l := range lines[:len(lines)-1] {
				assert.True(t, strings.HasPrefix(l, path+":"), "every problem names the file: %q", l)
				if strings.HasPrefix(l, path+":"+tc.where) && strings.Contains(l, tc.says) {
					found = true
				}
			}
			assert.True(t, found, "no line %q…%q in\n%s", path+":"+tc.where, tc.says, r.stderr)
		})
	}
}

// TestCatalogValidateExactOutput pins what one bad catalog prints, to the
// byte, stream by stream.
func TestCatalogValidateExactOutput(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "bad.yaml", `manager:
  servers:
    - {name: s1, address: 127.0.0.1, slots: 4, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    args: ["--port={{.Prot}}"]
    replicas: {min: 3, max: 2}
`)
	r := msm(t, nil, "catalog", "validate", path)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Equal(t, path+`:7: services[0].args[0]: unknown template field .Prot; use one of .Port, .Service, .Container, .Server, .Address
`+path+`:8: services[0].replicas: min 3 is greater than max 2; lower min or raise max
`+path+`: 2 problems
`, r.stderr)
}

func TestCatalogValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	r := msm(t, nil, "catalog", "validate", path)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, path)
	assert.Contains(t, r.stderr, "no such file")
}

// TestDocsValidate runs the real `msm catalog validate` on every console
// block of docs/catalog.md: the block's output is what the CLI prints.
// (catalog/docs_test.go checks the same blocks against catalog.Parse.)
func TestDocsValidate(t *testing.T) {
	const cmd = "$ msm catalog validate "
	data, err := os.ReadFile("../../docs/catalog.md")
	require.NoError(t, err)
	type block struct {
		lang, body string
		line       int
	}
	var blocks []block
	var cur *block
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &block{lang: strings.TrimPrefix(l, "```"), line: i + 1}
		case cur != nil && l == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += l + "\n"
		}
	}
	require.Nil(t, cur, "unclosed code block")
	checked, failing := 0, 0
	for i, b := range blocks {
		if b.lang != "console" {
			continue
		}
		first, want, _ := strings.Cut(b.body, "\n")
		require.True(t, strings.HasPrefix(first, cmd), "console block at line %d", b.line)
		file := strings.TrimPrefix(first, cmd)
		t.Run(file, func(t *testing.T) {
			// A file in the repository is run where it is; any other is
			// the yaml block just before, written under that name.
			path, prefix := "../../"+file, "../../"
			if _, err := os.Stat(path); err != nil {
				require.True(t, i > 0 && blocks[i-1].lang == "yaml", "console block at line %d: %s is neither a file nor the yaml block before it", b.line, file)
				dir := t.TempDir()
				path, prefix = writeFile(t, dir, file, blocks[i-1].body), dir+string(filepath.Separator)
			}
			r := msm(t, nil, "catalog", "validate", path)
			out := r.stdout
			if r.code != 0 {
				assert.Equal(t, 1, r.code)
				assert.Empty(t, r.stdout)
				out = r.stderr
				failing++
			} else {
				assert.Empty(t, r.stderr)
			}
			assert.Equal(t, want, strings.ReplaceAll(out, prefix, ""), "docs/catalog.md line %d", b.line)
		})
		checked++
	}
	assert.GreaterOrEqual(t, checked, 2, "docs/catalog.md lost its validate examples")
	assert.GreaterOrEqual(t, failing, 1, "docs/catalog.md shows no failing validate")
}

// TestWorkerBadCatalog: the worker validates its catalog before it dials
// Temporal, prints the same problems as validate, and starts nothing.
func TestWorkerBadCatalog(t *testing.T) {
	bad := writeFile(t, t.TempDir(), "bad.yaml", strings.Replace(good, "{min: 1, max: 2}", "{min: 3, max: 2}", 1))
	validate := msm(t, nil, "catalog", "validate", bad)
	require.Equal(t, 1, validate.code)
	problems := strings.TrimSuffix(validate.stderr, bad+": 1 problem\n")
	require.NotEqual(t, validate.stderr, problems, "validate ends with the count")

	// A listener that counts connections: the worker must make none.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var dials atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			conn.Close()
		}
	}()
	addr := l.Addr().String()
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--catalog", map[string]string{"TEMPORAL_ADDRESS": addr}, []string{"worker", "--catalog", bad}},
		{"MSM_CATALOG", map[string]string{"TEMPORAL_ADDRESS": addr, "MSM_CATALOG": bad}, []string{"worker"}},
		{"--address", nil, []string{"worker", "--address", addr, "--catalog", bad}},
		{"dev", map[string]string{"TEMPORAL_ADDRESS": addr, "MSM_CATALOG": bad}, []string{"dev", "--state", t.TempDir()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := msmWithin(t, 5*time.Second, tc.env, tc.args...)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			assert.Equal(t, problems+bad+": 1 problem; nothing was started\n", r.stderr)
			assert.NotContains(t, r.stderr, "not reachable")
			assert.Zero(t, dials.Load(), "it must not have tried to reach Temporal")
		})
	}
}

// TestStatusUnreachable: status fails fast and names where it looked; the
// address and namespace come from the flags, else the environment.
func TestStatusUnreachable(t *testing.T) {
	envAddr, flagAddr := closedAddress(t), closedAddress(t)
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		addr, ns  string
		notAddrOf string
	}{
		{name: "TEMPORAL_ADDRESS", env: map[string]string{"TEMPORAL_ADDRESS": envAddr}, args: []string{"status"}, addr: envAddr, ns: "default"},
		{name: "--address", args: []string{"status", "--address", flagAddr}, addr: flagAddr, ns: "default"},
		{name: "--address beats TEMPORAL_ADDRESS", env: map[string]string{"TEMPORAL_ADDRESS": envAddr},
			args: []string{"status", "--address", flagAddr}, addr: flagAddr, ns: "default", notAddrOf: envAddr},
		{name: "TEMPORAL_NAMESPACE", env: map[string]string{"TEMPORAL_ADDRESS": envAddr, "TEMPORAL_NAMESPACE": "team-a"},
			args: []string{"status", "-o", "json"}, addr: envAddr, ns: "team-a"},
		{name: "--namespace beats TEMPORAL_NAMESPACE", env: map[string]string{"TEMPORAL_ADDRESS": envAddr, "TEMPORAL_NAMESPACE": "team-a"},
			args: []string{"status", "--namespace", "team-b"}, addr: envAddr, ns: "team-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := msmWithin(t, 10*time.Second, tc.env, tc.args...)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			assert.True(t, strings.HasPrefix(r.stderr, "msm status: Temporal is not reachable at "+tc.addr+" (namespace "+tc.ns+")"), r.stderr)
			assert.Contains(t, r.stderr, "TEMPORAL_ADDRESS", "says how to point msm elsewhere")
			if tc.notAddrOf != "" {
				assert.NotContains(t, r.stderr, tc.notAddrOf)
			}
		})
	}
}

// TestFlagDefaultsFromEnv: a command's help shows each flag's default,
// which is where the environment variable lands.
func TestFlagDefaultsFromEnv(t *testing.T) {
	env := map[string]string{
		"TEMPORAL_ADDRESS":   "10.9.8.7:7233",
		"TEMPORAL_NAMESPACE": "team-a",
		"MSM_MANAGER":        "blue",
		"MSM_CATALOG":        "/etc/msm/catalog.yaml",
		"MSM_SERVER":         "rack-3",
		"MSM_STATE_DIR":      "/var/lib/msm",
		"MSM_CONTAINER":      "c-42",
	}
	common := []string{`"10.9.8.7:7233"`, `"team-a"`, `"blue"`}
	tests := []struct {
		cmd  string
		want []string
	}{
		{"status", common},
		{"worker", append([]string{`"/etc/msm/catalog.yaml"`}, common...)},
		{"dev", append([]string{`"/etc/msm/catalog.yaml"`}, common...)},
		{"node", append([]string{`"rack-3"`, `"/var/lib/msm"`}, common...)},
		{"agent", append([]string{`"c-42"`, `"rack-3"`}, common...)},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			r := msm(t, env, tc.cmd, "-h")
			assert.Equal(t, 0, r.code)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, "(default "+w+")")
			}
			// Without the environment the built-in defaults show.
			r = msm(t, nil, tc.cmd, "-h")
			assert.Equal(t, 0, r.code)
			assert.Contains(t, r.stderr, `(default "127.0.0.1:7233")`)
			assert.Contains(t, r.stderr, `(default "local")`)
		})
	}
}

// TestStatusManagerFromEnv reaches a real dev server (bin/temporal, built
// by `make bin/temporal`; skipped without it) where no Manager runs: the
// Manager status asks for is MSM_MANAGER's, unless --manager says otherwise.
func TestStatusManagerFromEnv(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", "bin", "temporal")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no temporal CLI at %s: run `make bin/temporal` to build it", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Kill() })

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		manager string
	}{
		{"MSM_MANAGER", map[string]string{"MSM_MANAGER": "blue"}, []string{"status"}, "blue"},
		{"--manager beats MSM_MANAGER", map[string]string{"MSM_MANAGER": "blue"}, []string{"status", "--manager", "green"}, "green"},
		{"default", nil, []string{"status", "-o", "json"}, "local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"TEMPORAL_ADDRESS": srv.Address()}
			for k, v := range tc.env {
				env[k] = v
			}
			r := msm(t, env, tc.args...)
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			assert.Equal(t, `msm status: manager "`+tc.manager+"\" is not running: start it with `msm worker --catalog FILE` (or `make dev`)\n", r.stderr)
		})
	}
}

// TestKeysNewKeep: `msm keys new` never overwrites a ring; with --keep a
// ring already there is checked and kept, so a deployment's start can run
// it every time.
func TestKeysNewKeep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	r := run(nil, []string{"keys", "new", "--keep", "--id", "k1", path})
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Wrote key ring "+path+" (key k1")
	first, err := os.ReadFile(path)
	require.NoError(t, err)

	r = run(nil, []string{"keys", "new", "--id", "k2", path})
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "file exists")
	r = run(nil, []string{"keys", "new", "--keep", "--id", "k2", path})
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Kept key ring "+path+" (current key k1)")
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, first, again, "the ring is the same")

	require.NoError(t, os.WriteFile(path, []byte("not a ring\n"), 0o600))
	r = run(nil, []string{"keys", "new", "--keep", path})
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "keeping "+path)
}
