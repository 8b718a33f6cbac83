package catalog

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // err.Error(), line by line
	}{
		{
			name: "min greater than max, with its line",
			yaml: `manager:
  servers:
    - name: local-1
      address: 127.0.0.1
      slots: 8
      ports: 21000-21099
services:
  - name: web
    command: bin/demo
    replicas:
      max: 2
  - name: api
    command: bin/demo
    replicas:
      min: 3
      max: 2
`,
			want: []string{
				"catalog.yaml:14: services[1].replicas: min 3 is greater than max 2; lower min or raise max",
			},
		},
		{
			name: "unknown fields, with a suggestion when one is close",
			yaml: `manager:
  kind: standalone
  servers:
    - name: local-1
      address: 127.0.0.1
      slot: 2
      slots: 2
      ports: 21000-21099
services:
  - name: web
    command: bin/demo
    replicas: {max: 1}
    health:
      timeout_ms: 100
    colour: blue
workers: 3
`,
			want: []string{
				`catalog.yaml:6: manager.servers[0].slot: unknown field "slot"; did you mean "slots"?`,
				`catalog.yaml:14: services[0].health.timeout_ms: unknown field "timeout_ms"; use one of path, interval, timeout, failure_threshold here`,
				`catalog.yaml:15: services[0].colour: unknown field "colour"; use one of name, command, args, image, env, health, replicas, slots, drain, scaling, limits, run_as, update, schedules here`,
				`catalog.yaml:16: workers: unknown field "workers"; use one of manager, services`,
			},
		},
		{
			name: "values of the wrong type",
			yaml: `manager:
  warm_pool: some
  servers:
    - name: local-1
      address: [127.0.0.1]
      slots: 2.5
      ports: 21000
services:
  - name: web
    command: bin/demo
    args: --port={{.Port}}
    env: [A=1]
    replicas: {max: "1"}
    health:
      interval: 5
      timeout: 5 seconds
  - web
`,
			want: []string{
				`catalog.yaml:2: manager.warm_pool: "some" is not a whole number; write a number such as 3`,
				`catalog.yaml:5: manager.servers[0].address: expected a string, got a list; write a single value`,
				`catalog.yaml:6: manager.servers[0].slots: "2.5" is not a whole number; write a number such as 3`,
				`catalog.yaml:7: manager.servers[0].ports: "21000" is not a port range; write it as FIRST-LAST, e.g. "20000-20099"`,
				`catalog.yaml:11: services[0].args: expected a list, got "--port={{.Port}}"; write one "- item" per line, or [a, b]`,
				`catalog.yaml:12: services[0].env: expected a mapping of NAME: value, got a list; write one NAME: value per line`,
				`catalog.yaml:13: services[0].replicas.max: "1" is quoted, which makes it text; write 1 without quotes`,
				`catalog.yaml:15: services[0].health.interval: 5 has no unit; write a duration such as "2s" or "500ms"`,
				`catalog.yaml:16: services[0].health.timeout: "5 seconds" is not a duration; write one such as "2s" or "500ms"`,
				`catalog.yaml:17: services[1]: expected a mapping with the fields name, command, args, image, env, health, replicas, slots, drain, scaling, limits, run_as, update, schedules, got "web"; write them indented below`,
			},
		},
		{
			name: "a value that fails to decode is not validated again",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    replicas:
      min: 1
      max: lots
`,
			want: []string{
				`catalog.yaml:9: services[0].replicas.max: "lots" is not a whole number; write a number such as 3`,
			},
		},
		{
			name: "a defaulted field takes the line of its nearest written parent",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - name: web
    replicas: {max: 1}
`,
			want: []string{
				`catalog.yaml:5: services[0].command: the standalone kind starts services as processes and needs a command; set command to the program to run, e.g. "bin/demo"`,
			},
		},
		{
			name: "a missing section has no line and comes first",
			yaml: `manager:
  kind: standalone
  warm_pool: -1
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
`,
			want: []string{
				`catalog.yaml: services: the catalog has no services; list at least one MicroService under services`,
				`catalog.yaml:3: manager.warm_pool: -1 is negative; set 0 for no warm pool, or how many waiting containers to keep ready`,
			},
		},
		{
			name: "duplicate names name both lines",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
    - {name: local-1, address: 10.0.0.2, slots: 2, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    replicas: {max: 1}
  - name: web
    command: bin/demo
    replicas: {max: 1}
`,
			want: []string{
				`catalog.yaml:4: manager.servers[1].name: "local-1" is also the name of manager.servers[0] (line 3); give each server its own name`,
				`catalog.yaml:9: services[1].name: "web" is also the name of services[0] (line 6); give each service its own name`,
			},
		},
		{
			name: "overlapping ports name the other server and its line",
			yaml: `manager:
  servers:
    - name: local-1
      address: 127.0.0.1
      slots: 2
      ports: 21000-21099
    - name: local-2
      address: 127.0.0.1
      slots: 2
      ports: 21090-21199
services:
  - {name: web, command: bin/demo, replicas: {max: 1}}
`,
			want: []string{
				`catalog.yaml:10: manager.servers[1].ports: ports 21090-21099 are also in the range 21000-21099 of server "local-1" (manager.servers[0] (line 3)) at the same address 127.0.0.1; give each server on one address its own ports`,
			},
		},
		{
			name: "template problems name the arg",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    args:
      - --name={{.Service}}
      - --port={{.Prot}}
    env:
      ADDR: "{{.Address}:{{.Port}}"
    replicas: {max: 1}
`,
			want: []string{
				`catalog.yaml:9: services[0].args[1]: unknown template field .Prot; use one of .Port, .Service, .Container, .Server, .Address`,
				`catalog.yaml:11: services[0].env.ADDR: invalid template: bad character U+007D '}'; fix the {{ }} syntax`,
			},
		},
		{
			name: "a key written twice",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    replicas: {max: 1}
    command: bin/other
`,
			want: []string{
				`catalog.yaml:8: services[0].command: "command" is written twice (first on line 6); keep one`,
			},
		},
		{
			name: "a merge key needs a mapping",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    replicas:
      <<: 3
      max: 1
`,
			want: []string{
				`catalog.yaml:8: services[0].replicas: a merge key (<<) takes a mapping or a list of mappings, got "3"; merge an anchored mapping such as <<: *defaults`,
			},
		},
		{
			// yaml.v3 names the line where the enclosing mapping's trouble
			// starts, one above the stray key.
			name: "syntax error",
			yaml: `manager:
  kind: standalone
 servers: []
`,
			want: []string{
				`catalog.yaml:2: invalid YAML: did not find expected key; fix the syntax`,
			},
		},
		{
			name: "tab indentation",
			yaml: "manager:\n\tkind: standalone\n",
			want: []string{
				`catalog.yaml:2: invalid YAML: found character that cannot start any token; fix the syntax`,
			},
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{`catalog.yaml: the file is empty; write a catalog with a manager and a services section`},
		},
		{
			name: "only comments",
			yaml: "# nothing yet\n",
			want: []string{`catalog.yaml: the file is empty; write a catalog with a manager and a services section`},
		},
		{
			name: "root is a list",
			yaml: "- name: web\n",
			want: []string{`catalog.yaml:1: the catalog must be a mapping with manager and services sections, got a list`},
		},
		{
			name: "two documents",
			yaml: `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 2, ports: 21000-21099}
services:
  - {name: web, command: bin/demo, replicas: {max: 1}}
---
services: []
`,
			want: []string{`catalog.yaml:6: a second YAML document starts here; keep one catalog per file`},
		},
		{
			name: "many problems at once, in line order",
			yaml: `manager:
  kind: standalone
  warm_pool: 1
  servers:
    - name: Local_1
      address: 127.0.0.1
      slots: 0
      ports: 21000-21099
services:
  - name: web
    command: bin/demo
    replicas: {min: 2, initial: 1, max: 3}
    health: {path: healthz, failure_threshold: -1}
  - name: api
    replicas: {max: 1}
`,
			want: []string{
				`catalog.yaml:5: manager.servers[0].name: "Local_1" is not a valid server name; use up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (it becomes part of task queue names)`,
				`catalog.yaml:7: manager.servers[0].slots: 0 is less than 1; set how many slots the server offers to containers, e.g. 4`,
				`catalog.yaml:12: services[0].replicas: initial 1 is less than min 2; raise initial or lower min`,
				`catalog.yaml:13: services[0].health.path: "healthz" does not start with "/"; write it as "/healthz"`,
				`catalog.yaml:13: services[0].health.failure_threshold: -1 is less than 1; set how many failed checks in a row make an instance unhealthy, e.g. 3`,
				`catalog.yaml:14: services[1].command: the standalone kind starts services as processes and needs a command; set command to the program to run, e.g. "bin/demo"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "catalog.yaml")
			require.Error(t, err)
			assert.Nil(t, c)
			var cerr *Error
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			for _, p := range cerr.Problems {
				assert.Equal(t, "catalog.yaml", p.File)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	// An anchor is defined where first used, and merged later (<<), with
	// the keys written beside the merge key taking precedence.
	c, err := Parse([]byte(`
manager:
  kind: standalone
  servers:
    - name: local-1
      address: 127.0.0.1
      slots: 4
      ports: "21000-21009"
services:
  - name: web
    command: bin/demo
    args: &args ["--port={{.Port}}"]
    env: {MODE: "fast", EMPTY: ~}
    health: &health
      path: /ready
      interval: 500ms
      timeout: 250ms
    replicas: {min: 1, max: 3}
    slots: 2
    limits: {memory: 256Mi, pids: 64}
  - name: api
    command: bin/demo
    args: *args
    health:
      <<: *health
      path: /healthz
    replicas: {initial: 1}
`), "c.yaml")
	require.NoError(t, err)
	defaultScaling := Scaling{Overload: 80, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second}
	want := &Catalog{
		Manager: Manager{Kind: KindStandalone, Placement: PlacementSpread, Liveness: DefaultLiveness, ForgetAfter: DefaultForgetAfter, Servers: []Server{
			{Name: "local-1", Address: "127.0.0.1", Slots: 4, Ports: PortRange{21000, 21009}},
		}},
		Services: []Service{
			{
				Name: "web", Command: "bin/demo", Args: []string{"--port={{.Port}}"},
				Env:      map[string]string{"MODE": "fast", "EMPTY": ""},
				Health:   HealthCheck{Path: "/ready", Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond, FailureThreshold: 3},
				Replicas: Replicas{Min: 1, Initial: 1, Max: 3},
				Slots:    2,
				Drain:    time.Second,
				Scaling:  defaultScaling,
				Limits:   &Limits{Memory: "256Mi", Pids: 64},
			},
			{
				Name: "api", Command: "bin/demo", Args: []string{"--port={{.Port}}"},
				Health:   HealthCheck{Path: "/healthz", Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond, FailureThreshold: 3},
				Replicas: Replicas{Min: 0, Initial: 1, Max: 1},
				Slots:    1,
				Drain:    time.Second,
				Scaling:  defaultScaling,
			},
		},
	}
	assert.Equal(t, want, c)
}

func TestLoadExample(t *testing.T) {
	c, err := Load("../examples/catalog.yaml")
	require.NoError(t, err)
	assert.Equal(t, KindStandalone, c.Manager.Kind)
	assert.Equal(t, 1, c.Manager.WarmPool)
	assert.Equal(t, []Server{
		{Name: "local-1", Address: "127.0.0.1", Slots: 3, Ports: PortRange{21000, 21099}},
		{Name: "local-2", Address: "127.0.0.1", Slots: 3, Ports: PortRange{21100, 21199}},
	}, c.Manager.Servers)
	require.Len(t, c.Services, 2)
	web, api := c.Services[0], c.Services[1]
	assert.Equal(t, "web", web.Name)
	assert.Equal(t, Replicas{Min: 1, Initial: 2, Max: 6}, web.Replicas)
	assert.Equal(t, "api", api.Name)
	assert.Equal(t, Replicas{Min: 1, Initial: 1, Max: 4}, api.Replicas)
	// web writes the scaling defaults out, api leaves them out: the same.
	defaults := Scaling{Overload: DefaultOverload, Window: DefaultWindow, Idle: DefaultIdle,
		Stabilization: DefaultStabilization, Cooldown: DefaultCooldown, Sample: DefaultSample}
	assert.Equal(t, defaults, web.Scaling)
	assert.Equal(t, defaults, api.Scaling)
	for _, s := range c.Services {
		assert.Equal(t, "bin/demo", s.Command)
		assert.Equal(t, []string{"--port={{.Port}}", "--name={{.Service}}"}, s.Args)
		assert.Equal(t, "/healthz", s.Health.Path)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-catalog.yaml")
	require.Error(t, err)
	assert.True(t, errors.Is(err, fs.ErrNotExist))
	assert.Contains(t, err.Error(), "reading catalog, ")
	var cerr *Error
	assert.False(t, errors.As(err, &cerr), "an I/O error is not a catalog problem")
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"everything", Problem{File: "c.yaml", Line: 3, Field: "services[0].name", Message: "m"}, "c.yaml:3: services[0].name: m"},
		{"no line", Problem{File: "c.yaml", Field: "services", Message: "m"}, "c.yaml: services: m"},
		{"no field", Problem{File: "c.yaml", Line: 2, Message: "m"}, "c.yaml:2: m"},
		{"no file", Problem{Line: 2, Field: "f", Message: "m"}, "line 2: f: m"},
		{"message only", Problem{Message: "m"}, "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.p.String())
		})
	}
	assert.Equal(t, "a: m\nb: n", (&Error{Problems: []Problem{{Field: "a", Message: "m"}, {Field: "b", Message: "n"}}}).Error())
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"slot", "slots", 1},
		{"inital", "initial", 1},
		{"iniital", "initial", 2},
		{"kind", "mind", 1},
		{"abc", "", 3},
		{"warmpool", "warm_pool", 1},
	}
	for _, tc := range tests {
		t.Run(tc.a+"/"+tc.b, func(t *testing.T) {
			assert.Equal(t, tc.want, editDistance(tc.a, tc.b))
		})
	}
}
