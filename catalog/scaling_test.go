package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scalingYAML is a valid standalone catalog whose services carry the
// scaling sections given (indented under "scaling:"); "" leaves a service's
// section out. Its first service's scaling section starts on line 8.
func scalingYAML(sections ...string) string {
	var b strings.Builder
	b.WriteString(`manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 4, ports: 21000-21099}
services:
`)
	for i, s := range sections {
		b.WriteString("  - name: " + []string{"web", "api", "db"}[i] + "\n")
		b.WriteString("    command: bin/demo\n")
		b.WriteString("    replicas: {max: 1}\n")
		if s != "" {
			b.WriteString("    scaling:" + s + "\n")
		}
	}
	return b.String()
}

func TestScalingYAMLIsValid(t *testing.T) {
	c, err := Parse([]byte(scalingYAML("", "")), "catalog.yaml")
	require.NoError(t, err)
	require.Len(t, c.Services, 2)
}

func TestParseScalingValues(t *testing.T) {
	defaults := Scaling{Overload: 80, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second}
	tests := []struct {
		name    string
		section string
		want    Scaling
	}{
		{
			name:    "left out: the defaults",
			section: "",
			want:    defaults,
		},
		{
			name:    "empty: the defaults",
			section: " {}",
			want:    defaults,
		},
		{
			name:    "null: the defaults",
			section: " ~",
			want:    defaults,
		},
		{
			name: "everything set",
			section: `
      overload: 150
      window: 1m
      idle: 20
      stabilization: 90s
      cooldown: 500ms
      sample: 250ms`,
			want: Scaling{Overload: 150, Window: time.Minute, Idle: 20, Stabilization: 90 * time.Second, Cooldown: 500 * time.Millisecond, Sample: 250 * time.Millisecond},
		},
		{
			name:    "the defaults written out",
			section: " {overload: 80, window: 10s, idle: 10, stabilization: 5m, cooldown: 30s, sample: 1s}",
			want:    defaults,
		},
		{
			name:    "some set, the rest defaulted",
			section: " {window: 3s, stabilization: 5s, cooldown: 2s}",
			want:    Scaling{Overload: 80, Window: 3 * time.Second, Idle: 10, Stabilization: 5 * time.Second, Cooldown: 2 * time.Second, Sample: time.Second},
		},
		{
			name:    "only idle set",
			section: " {idle: 1}",
			want:    Scaling{Overload: 80, Window: 10 * time.Second, Idle: 1, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
		{
			// A zero cannot be told from a field left out.
			name:    "zero is left out",
			section: " {overload: 0, window: 0s, idle: 0, stabilization: 0s, cooldown: 0s, sample: 0s}",
			want:    defaults,
		},
		{
			name:    "overload above one core",
			section: " {overload: 350, idle: 100}",
			want:    Scaling{Overload: 350, Window: 10 * time.Second, Idle: 100, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
		{
			name:    "compound durations",
			section: " {window: 1m30s, stabilization: 1h, cooldown: 1.5s}",
			want:    Scaling{Overload: 80, Window: 90 * time.Second, Idle: 10, Stabilization: time.Hour, Cooldown: 1500 * time.Millisecond, Sample: time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(scalingYAML(tc.section)), "catalog.yaml")
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Services[0].Scaling)
		})
	}
}

// A scaling section can be shared with an anchor and merged, like health.
func TestParseScalingMerge(t *testing.T) {
	c, err := Parse([]byte(scalingYAML(
		` &fast {overload: 60, window: 2s, cooldown: 5s}`,
		`
      <<: *fast
      window: 4s`,
		` *fast`,
	)), "catalog.yaml")
	require.NoError(t, err)
	fast := Scaling{Overload: 60, Window: 2 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 5 * time.Second, Sample: time.Second}
	assert.Equal(t, fast, c.Services[0].Scaling)
	merged := fast
	merged.Window = 4 * time.Second
	assert.Equal(t, merged, c.Services[1].Scaling)
	assert.Equal(t, fast, c.Services[2].Scaling)
}

func TestParseScalingProblems(t *testing.T) {
	tests := []struct {
		name     string
		sections []string
		want     []string // err.Error(), line by line
	}{
		{
			name: "every value out of range",
			sections: []string{`
      overload: -1
      window: -10s
      idle: -5
      stabilization: -1m
      cooldown: -30s
      sample: -1s`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.overload: -1 is not a CPU percentage above 0; set one such as 80 (percent of one core)`,
				`catalog.yaml:10: services[0].scaling.window: -10s is not a positive duration; set one such as "10s"`,
				`catalog.yaml:11: services[0].scaling.idle: -5 is not a CPU percentage above 0; set one such as 10 (percent of one core)`,
				`catalog.yaml:12: services[0].scaling.stabilization: -1m0s is not a positive duration; set one such as "5m"`,
				`catalog.yaml:13: services[0].scaling.cooldown: -30s is not a positive duration; set one such as "30s"`,
				`catalog.yaml:14: services[0].scaling.sample: -1s is not a positive duration; set one such as "1s"`,
			},
		},
		{
			name: "idle equal to overload",
			sections: []string{`
      overload: 50
      idle: 50`},
			want: []string{
				`catalog.yaml:10: services[0].scaling.idle: 50 is not below overload 50; an instance cannot be idle and overloaded at once: lower idle or raise overload`,
			},
		},
		{
			name: "idle above overload",
			sections: []string{`
      idle: 90
      overload: 85`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.idle: 90 is not below overload 85; an instance cannot be idle and overloaded at once: lower idle or raise overload`,
			},
		},
		{
			name:     "idle set above the default overload",
			sections: []string{` {idle: 95}`},
			want: []string{
				`catalog.yaml:8: services[0].scaling.idle: 95 is not below overload 80; an instance cannot be idle and overloaded at once: lower idle or raise overload`,
			},
		},
		{
			// idle is left out, so the problem takes the line of scaling.
			name: "overload set below the default idle",
			sections: []string{`
      overload: 5`},
			want: []string{
				`catalog.yaml:8: services[0].scaling.idle: 10 is not below overload 5; an instance cannot be idle and overloaded at once: lower idle or raise overload`,
			},
		},
		{
			// Only the value out of range is reported; comparing the two
			// would repeat it in other words.
			name:     "negative overload is not compared with idle",
			sections: []string{` {overload: -80, idle: 10}`},
			want: []string{
				`catalog.yaml:8: services[0].scaling.overload: -80 is not a CPU percentage above 0; set one such as 80 (percent of one core)`,
			},
		},
		{
			name:     "negative idle is not compared with overload",
			sections: []string{` {overload: 5, idle: -10}`},
			want: []string{
				`catalog.yaml:8: services[0].scaling.idle: -10 is not a CPU percentage above 0; set one such as 10 (percent of one core)`,
			},
		},
		{
			name: "durations without a unit, like any duration",
			sections: []string{`
      window: 10
      stabilization: 1.5
      cooldown: "30"
      sample: 1 second`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.window: 10 has no unit; write a duration such as "2s" or "500ms"`,
				`catalog.yaml:10: services[0].scaling.stabilization: 1.5 has no unit; write a duration such as "2s" or "500ms"`,
				`catalog.yaml:11: services[0].scaling.cooldown: "30" is not a duration; write one such as "2s" or "500ms"`,
				`catalog.yaml:12: services[0].scaling.sample: "1 second" is not a duration; write one such as "2s" or "500ms"`,
			},
		},
		{
			name: "percentages of the wrong type",
			sections: []string{`
      overload: "90"
      idle: 7.5`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.overload: "90" is quoted, which makes it text; write 90 without quotes`,
				`catalog.yaml:10: services[0].scaling.idle: "7.5" is not a whole number; write a number such as 3`,
			},
		},
		{
			name: "percent sign",
			sections: []string{`
      overload: 80%`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.overload: "80%" is not a whole number; write a number such as 3`,
			},
		},
		{
			// overload holds its default (80) after failing to decode; idle
			// is not compared with a value the file never asked for.
			name: "an overload that fails to decode is not compared with idle",
			sections: []string{`
      overload: lots
      idle: 90`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.overload: "lots" is not a whole number; write a number such as 3`,
			},
		},
		{
			name: "an idle that fails to decode is not compared with overload",
			sections: []string{`
      overload: 5
      idle: few`},
			want: []string{
				`catalog.yaml:10: services[0].scaling.idle: "few" is not a whole number; write a number such as 3`,
			},
		},
		{
			name:     "scaling that is not a mapping",
			sections: []string{` fast`},
			want: []string{
				`catalog.yaml:8: services[0].scaling: expected a mapping with the fields overload, window, idle, stabilization, cooldown, sample, target, tolerance, in_flight, metrics, got "fast"; write them indented below`,
			},
		},
		{
			name: "unknown fields in scaling",
			sections: []string{`
      cooldwon: 1m
      cpu: 80`},
			want: []string{
				`catalog.yaml:9: services[0].scaling.cooldwon: unknown field "cooldwon"; did you mean "cooldown"?`,
				`catalog.yaml:10: services[0].scaling.cpu: unknown field "cpu"; use one of overload, window, idle, stabilization, cooldown, sample, target, tolerance, in_flight, metrics here`,
			},
		},
		{
			name:     "a problem in the second service names it",
			sections: []string{"", ` {sample: -100ms}`},
			want: []string{
				`catalog.yaml:11: services[1].scaling.sample: -100ms is not a positive duration; set one such as "1s"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(scalingYAML(tc.sections...)), "catalog.yaml")
			require.Error(t, err)
			assert.Nil(t, c)
			var cerr *Error
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			for _, p := range cerr.Problems {
				assert.Equal(t, "catalog.yaml", p.File)
				assert.Positive(t, p.Line, "%s", p)
			}
		})
	}
}

// TestValidateScaling checks the scaling rules on a catalog built in code,
// as the PostgreSQL source builds one: no lines, the exact messages.
func TestValidateScaling(t *testing.T) {
	tests := []struct {
		name   string
		modify func(s *Scaling)
		want   []want
	}{
		{
			name:   "the defaults are valid",
			modify: func(*Scaling) {},
		},
		{
			name: "smallest valid values",
			modify: func(s *Scaling) {
				*s = Scaling{Overload: 2, Idle: 1, Window: 1, Stabilization: 1, Cooldown: 1, Sample: 1}
			},
		},
		{
			name:   "overload above 100, for a process on several cores",
			modify: func(s *Scaling) { s.Overload, s.Idle = 400, 150 },
		},
		{
			name:   "overload 0",
			modify: func(s *Scaling) { s.Overload = 0 },
			want:   []want{{"services[0].scaling.overload", "0 is not a CPU percentage above 0; set one such as 80 (percent of one core)"}},
		},
		{
			name:   "negative overload",
			modify: func(s *Scaling) { s.Overload = -20 },
			want:   []want{{"services[0].scaling.overload", "-20 is not a CPU percentage above 0; set one such as 80 (percent of one core)"}},
		},
		{
			name:   "idle 0",
			modify: func(s *Scaling) { s.Idle = 0 },
			want:   []want{{"services[0].scaling.idle", "0 is not a CPU percentage above 0; set one such as 10 (percent of one core)"}},
		},
		{
			name:   "negative idle",
			modify: func(s *Scaling) { s.Idle = -1 },
			want:   []want{{"services[0].scaling.idle", "-1 is not a CPU percentage above 0; set one such as 10 (percent of one core)"}},
		},
		{
			name:   "idle equal to overload",
			modify: func(s *Scaling) { s.Idle, s.Overload = 80, 80 },
			want:   []want{{"services[0].scaling.idle", "80 is not below overload 80; an instance cannot be idle and overloaded at once: lower idle or raise overload"}},
		},
		{
			name:   "idle above overload",
			modify: func(s *Scaling) { s.Idle, s.Overload = 60, 40 },
			want:   []want{{"services[0].scaling.idle", "60 is not below overload 40; an instance cannot be idle and overloaded at once: lower idle or raise overload"}},
		},
		{
			name:   "idle one below overload is fine",
			modify: func(s *Scaling) { s.Idle, s.Overload = 79, 80 },
		},
		{
			name:   "overload and idle both out of range, not compared",
			modify: func(s *Scaling) { s.Overload, s.Idle = -1, 0 },
			want: []want{
				{"services[0].scaling.overload", "-1 is not a CPU percentage above 0"},
				{"services[0].scaling.idle", "0 is not a CPU percentage above 0"},
			},
		},
		{
			name:   "window 0",
			modify: func(s *Scaling) { s.Window = 0 },
			want:   []want{{"services[0].scaling.window", `0s is not a positive duration; set one such as "10s"`}},
		},
		{
			name:   "negative window",
			modify: func(s *Scaling) { s.Window = -time.Second },
			want:   []want{{"services[0].scaling.window", `-1s is not a positive duration; set one such as "10s"`}},
		},
		{
			name:   "negative stabilization",
			modify: func(s *Scaling) { s.Stabilization = -5 * time.Minute },
			want:   []want{{"services[0].scaling.stabilization", `-5m0s is not a positive duration; set one such as "5m"`}},
		},
		{
			name:   "negative cooldown",
			modify: func(s *Scaling) { s.Cooldown = -time.Millisecond },
			want:   []want{{"services[0].scaling.cooldown", `-1ms is not a positive duration; set one such as "30s"`}},
		},
		{
			name:   "sample 0",
			modify: func(s *Scaling) { s.Sample = 0 },
			want:   []want{{"services[0].scaling.sample", `0s is not a positive duration; set one such as "1s"`}},
		},
		{
			name: "all wrong: the percentages, then the durations",
			modify: func(s *Scaling) {
				*s = Scaling{Overload: -1, Window: -1, Idle: -1, Stabilization: -1, Cooldown: -1, Sample: -1}
			},
			want: []want{
				{"services[0].scaling.overload", "-1 is not a CPU percentage above 0"},
				{"services[0].scaling.idle", "-1 is not a CPU percentage above 0"},
				{"services[0].scaling.window", "-1ns is not a positive duration"},
				{"services[0].scaling.stabilization", "-1ns is not a positive duration"},
				{"services[0].scaling.cooldown", "-1ns is not a positive duration"},
				{"services[0].scaling.sample", "-1ns is not a positive duration"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validCatalog()
			tc.modify(&c.Services[0].Scaling)
			got := c.Validate()
			require.Len(t, got, len(tc.want), "problems: %v", got)
			for i, w := range tc.want {
				assert.Equal(t, w.field, got[i].Field)
				assert.Contains(t, got[i].Message, w.msg)
				assert.Contains(t, got[i].Message, "; ", "says what to do")
				assert.Zero(t, got[i].Line, "Validate knows no lines")
			}
		})
	}
}

// A catalog built in code that skips Default has no scaling policy, and
// Validate says so for each field of each service rather than letting an
// agent sample every 0s.
func TestValidateScalingWithoutDefault(t *testing.T) {
	c := validCatalog()
	c.Services[1].Scaling = Scaling{}
	var fields []string
	for _, p := range c.Validate() {
		fields = append(fields, p.Field)
	}
	assert.Equal(t, []string{
		"services[1].scaling.overload",
		"services[1].scaling.idle",
		"services[1].scaling.window",
		"services[1].scaling.stabilization",
		"services[1].scaling.cooldown",
		"services[1].scaling.sample",
	}, fields)
}
