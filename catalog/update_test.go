package catalog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpdateValidates(t *testing.T) {
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name   string
		update Update
		field  string // "" when valid
		msg    string
	}{
		{"the defaults", Update{}, "", ""},
		{"surge 2", Update{MaxSurge: n(2)}, "", ""},
		{"destroy first", Update{MaxSurge: n(0), MaxUnavailable: n(1)}, "", ""},
		{"neither", Update{MaxSurge: n(0)}, "services[0].update", "neither add nor remove"},
		{"negative surge", Update{MaxSurge: n(-1)}, "services[0].update.max_surge", "is negative"},
		{"negative unavailable", Update{MaxUnavailable: n(-2)}, "services[0].update.max_unavailable", "is negative"},
		{"negative grace", Update{HealthGrace: -time.Second}, "services[0].update.health_grace", "not between 0 and 1h0m0s"},
		{"grace too long", Update{HealthGrace: 2 * time.Hour}, "services[0].update.health_grace", "not between"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validCatalog()
			u := tc.update
			c.Services[0].Update = &u
			ps := c.Validate()
			if tc.field == "" {
				assert.Empty(t, ps)
				return
			}
			require.NotEmpty(t, ps)
			assert.Equal(t, tc.field, ps[0].Field)
			assert.Contains(t, ps[0].Message, tc.msg)
		})
	}
}

func TestUpdatePolicyDefaults(t *testing.T) {
	f, two := false, 2
	assert.Equal(t, Policy{MaxSurge: 1, MaxUnavailable: 0, HealthGrace: 10 * time.Second, AutoRollback: true}, Service{}.UpdatePolicy())
	assert.Equal(t, Policy{MaxSurge: 2, MaxUnavailable: 0, HealthGrace: time.Second, AutoRollback: false},
		Service{Update: &Update{MaxSurge: &two, HealthGrace: time.Second, AutoRollback: &f}}.UpdatePolicy())
}

// TestRevision: what an instance runs changes the revision; how many run
// and how they scale or roll do not.
func TestRevision(t *testing.T) {
	base := validCatalog().Services[0]
	base.Env = map[string]string{"A": "1", "B": "2"}
	rev := base.Revision()
	assert.Len(t, rev, 12)
	same := base
	same.Env = map[string]string{"B": "2", "A": "1"}
	same.Replicas.Max = 9
	same.Scaling.Overload = 50
	same.Drain = 3 * time.Second
	same.Update = &Update{HealthGrace: time.Second}
	assert.Equal(t, rev, same.Revision(), "replicas, scaling, drain and update are no new revision")
	for name, change := range map[string]func(*Service){
		"command": func(s *Service) { s.Command = "bin/other" },
		"args":    func(s *Service) { s.Args = append([]string{"-v"}, s.Args...) },
		"env":     func(s *Service) { s.Env = map[string]string{"A": "1", "B": "3"} },
		"image":   func(s *Service) { s.Image = "app:2" },
		"health":  func(s *Service) { s.Health.Path = "/ready" },
		"limits":  func(s *Service) { s.Limits = &Limits{Memory: "128Mi"} },
		"run_as":  func(s *Service) { s.RunAs = "1001" },
	} {
		s := base
		s.Env = map[string]string{"A": "1", "B": "2"}
		change(&s)
		assert.NotEqual(t, rev, s.Revision(), name)
	}
}

// TestUpdateParses: update's fields read from YAML, a 0 kept apart from
// one left out, and a wrong type said with its line.
func TestUpdateParses(t *testing.T) {
	const base = `manager:
  servers: [{name: s1, address: 127.0.0.1, slots: 4, ports: 21000-21099}]
services:
  - name: web
    command: bin/demo
    replicas: {initial: 2, max: 4}
`
	c, err := Parse([]byte(base+"    update: {max_surge: 0, max_unavailable: 1, health_grace: 3s, auto_rollback: false}\n"), "catalog.yaml")
	require.NoError(t, err)
	assert.Equal(t, Policy{MaxSurge: 0, MaxUnavailable: 1, HealthGrace: 3 * time.Second, AutoRollback: false}, c.Services[0].UpdatePolicy())
	c, err = Parse([]byte(base+"    update: {health_grace: 1s}\n"), "catalog.yaml")
	require.NoError(t, err)
	assert.Equal(t, Policy{MaxSurge: 1, MaxUnavailable: 0, HealthGrace: time.Second, AutoRollback: true}, c.Services[0].UpdatePolicy())
	_, err = Parse([]byte(base+"    update: {auto_rollback: yes please}\n"), "catalog.yaml")
	assert.ErrorContains(t, err, "catalog.yaml:7: services[0].update.auto_rollback: ")
	assert.ErrorContains(t, err, "is not true or false")
	_, err = Parse([]byte(base+"    update: {max_surge: 0}\n"), "catalog.yaml")
	assert.ErrorContains(t, err, "catalog.yaml:7: services[0].update: max_surge 0 and max_unavailable 0 let a roll neither add nor remove an instance")
}
