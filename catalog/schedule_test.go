package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScheduleRules(t *testing.T) {
	// validCatalog's web has replicas 1..4.
	for _, tc := range []struct {
		name  string
		rules []ScheduleRule
		field string // the problem's field, "" for none
		msg   string
	}{
		{"weekday mornings and evenings", []ScheduleRule{{Cron: "0 8 * * 1-5", Min: 4}, {Cron: "0 20 * * *", Min: 1}}, "", ""},
		{"names, steps and lists", []ScheduleRule{{Cron: "*/15 6-9,17 1 JAN-MAR MON-FRI", Min: 2}}, "", ""},
		{"a time zone", []ScheduleRule{{Cron: "30 7 * * *", Min: 3, Timezone: "Europe/Paris"}}, "", ""},
		{"min at the bounds", []ScheduleRule{{Cron: "0 0 * * *", Min: 1}, {Cron: "0 1 * * *", Min: 4}}, "", ""},
		{"no cron", []ScheduleRule{{Min: 2}}, "services[0].schedules[0].cron", "the rule has no cron expression; write one of five fields"},
		{"not cron", []ScheduleRule{{Cron: "every morning please", Min: 2}}, "services[0].schedules[0].cron", `"every morning please" has 3 fields; write five`},
		{"a value out of range", []ScheduleRule{{Cron: "0 25 * * *", Min: 2}}, "services[0].schedules[0].cron", `"0 25 * * *" is not a cron expression: end of range (25) above maximum (23)`},
		{"a bad name", []ScheduleRule{{Cron: "0 8 * * MOX", Min: 2}}, "services[0].schedules[0].cron", `"0 8 * * MOX" is not a cron expression`},
		{"six fields (seconds or a year?)", []ScheduleRule{{Cron: "0 0 8 * * 1-5", Min: 2}}, "services[0].schedules[0].cron", "has 6 fields; write five"},
		{"a shorthand", []ScheduleRule{{Cron: "@daily", Min: 2}}, "services[0].schedules[0].cron", `"@daily" is a shorthand; write the five fields`},
		{"a zone in the expression", []ScheduleRule{{Cron: "CRON_TZ=Europe/Paris 0 8 * * *", Min: 2}}, "services[0].schedules[0].cron", "write the zone in the rule's timezone field"},
		{"min below replicas.min", []ScheduleRule{{Cron: "0 8 * * *", Min: 0}}, "services[0].schedules[0].min", "min 0 is outside the replicas 1..4 of web; a scheduled floor lies within them"},
		{"min above replicas.max", []ScheduleRule{{Cron: "0 8 * * *", Min: 5}}, "services[0].schedules[0].min", "min 5 is outside the replicas 1..4 of web"},
		{"an unknown zone", []ScheduleRule{{Cron: "0 8 * * *", Min: 2, Timezone: "Mars/Olympus"}}, "services[0].schedules[0].timezone", `"Mars/Olympus" is not a time zone; write an IANA name`},
		{"the machine's zone", []ScheduleRule{{Cron: "0 8 * * *", Min: 2, Timezone: "Local"}}, "services[0].schedules[0].timezone", `"Local" is whatever machine reads it`},
		{"the second rule is the bad one", []ScheduleRule{{Cron: "0 8 * * *", Min: 2}, {Cron: "0 8 * *", Min: 2}}, "services[0].schedules[1].cron", "has 4 fields"},
		{"too many", manyRules(MaxSchedulesPerService + 1), "services[0].schedules", "web has 11 schedule rules, more than 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validCatalog()
			c.Services[0].Schedules = tc.rules
			ps := c.Validate()
			if tc.field == "" {
				assert.Empty(t, ps)
				return
			}
			require.Len(t, ps, 1, "%v", ps)
			assert.Equal(t, tc.field, ps[0].Field)
			assert.Contains(t, ps[0].Message, tc.msg)
			assert.Contains(t, ps[0].Message, "; ", "says what to do")
		})
	}
}

func manyRules(n int) []ScheduleRule {
	out := make([]ScheduleRule, n)
	for i := range out {
		out[i] = ScheduleRule{Cron: fmt.Sprintf("0 %d * * *", i), Min: 1}
	}
	return out
}

// A catalog's schedule rules count as a whole, too.
func TestScheduleRulesOfTheCatalog(t *testing.T) {
	c := validCatalog()
	c.Services = c.Services[:1]
	for i := range MaxSchedules/MaxSchedulesPerService + 1 {
		s := c.Services[0]
		s.Name = fmt.Sprintf("svc%d", i)
		s.Replicas = Replicas{Max: 1}
		s.Schedules = manyRules(MaxSchedulesPerService)
		c.Services = append(c.Services, s)
	}
	c.Services = c.Services[1:]
	ps := c.Validate()
	require.Len(t, ps, 1, "%v", ps)
	assert.Equal(t, "services", ps[0].Field)
	assert.Contains(t, ps[0].Message, "the catalog has 510 schedule rules, more than 500")
}

// Problems in schedule rules name their file and line.
func TestParseScheduleProblems(t *testing.T) {
	const head = `manager:
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 4, ports: 21000-21099}
services:
  - name: web
    command: bin/demo
    replicas: {min: 1, initial: 2, max: 4}
`
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"a bad cron and a floor above max, each on its line", head + `    schedules:
      - cron: "0 8 * * 1-5"
        min: 4
      - cron: "0 20 * * * *"
        min: 1
      - {cron: "0 12 * * *", min: 9}
`, []string{
			`catalog.yaml:11: services[0].schedules[1].cron: "0 20 * * * *" has 6 fields; write five (minute hour day-of-month month day-of-week), such as "0 8 * * 1-5" (08:00 Monday to Friday)`,
			`catalog.yaml:13: services[0].schedules[2].min: min 9 is outside the replicas 1..4 of web; a scheduled floor lies within them: pick a number in that range, or change replicas`,
		}},
		{"an unknown field of a rule", head + `    schedules:
      - cron: "0 8 * * *"
        mins: 2
`, []string{
			`catalog.yaml:9: services[0].schedules[0].min: min 0 is outside the replicas 1..4 of web; a scheduled floor lies within them: pick a number in that range, or change replicas`,
			`catalog.yaml:10: services[0].schedules[0].mins: unknown field "mins"; did you mean "min"?`,
		}},
		{"not a list", head + `    schedules: "0 8 * * *"
`, []string{
			`catalog.yaml:8: services[0].schedules: expected a list, got "0 8 * * *"; write one "- item" per line, or [a, b]`,
		}},
		{"a quoted min", head + `    schedules: [{cron: "0 8 * * *", min: "2"}]
`, []string{
			`catalog.yaml:8: services[0].schedules[0].min: "2" is quoted, which makes it text; write 2 without quotes`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "catalog.yaml")
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
	c, err := Parse([]byte(head+`    schedules:
      - {cron: "0 8 * * 1-5", min: 4, timezone: Europe/Paris}
      - {cron: "0 20 * * *", min: 1}
`), "catalog.yaml")
	require.NoError(t, err)
	assert.Equal(t, []ScheduleRule{{Cron: "0 8 * * 1-5", Min: 4, Timezone: "Europe/Paris"}, {Cron: "0 20 * * *", Min: 1}}, c.Services[0].Schedules)
}

// A service without rules encodes as before: the Manager checks a
// catalog's tag over its JSON, on replay too.
func TestNoScheduleRulesLeaveTheJSONAsBefore(t *testing.T) {
	c := validCatalog()
	b, err := json.Marshal(c.Services[0])
	require.NoError(t, err)
	assert.NotContains(t, string(b), "schedules")
	c.Services[0].Schedules = []ScheduleRule{{Cron: "0 8 * * *", Min: 2}}
	b, err = json.Marshal(c.Services[0])
	require.NoError(t, err)
	assert.Contains(t, string(b), `"schedules":[{"cron":"0 8 * * *","min":2}]`)
}
