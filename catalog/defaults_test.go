package catalog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDefault(t *testing.T) {
	defaultHealth := HealthCheck{Path: "/healthz", Interval: 2 * time.Second, Timeout: time.Second, FailureThreshold: 3}
	defaultScaling := Scaling{Overload: 80, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second}
	tests := []struct {
		name string
		in   Service
		want Service
	}{
		{
			name: "everything left out",
			in:   Service{Name: "web"},
			want: Service{Drain: time.Second, Name: "web", Slots: 1, Health: defaultHealth, Scaling: defaultScaling},
		},
		{
			name: "initial from min, max from min",
			in:   Service{Replicas: Replicas{Min: 2}},
			want: Service{Drain: time.Second, Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 2, Initial: 2, Max: 2}, Scaling: defaultScaling},
		},
		{
			name: "max from initial",
			in:   Service{Replicas: Replicas{Min: 1, Initial: 3}},
			want: Service{Drain: time.Second, Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 1, Initial: 3, Max: 3}, Scaling: defaultScaling},
		},
		{
			name: "max kept",
			in:   Service{Replicas: Replicas{Min: 1, Max: 5}},
			want: Service{Drain: time.Second, Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 1, Initial: 1, Max: 5}, Scaling: defaultScaling},
		},
		{
			name: "set fields kept",
			in: Service{Slots: 2, Replicas: Replicas{Min: 1, Initial: 2, Max: 4},
				Health:  HealthCheck{Path: "/ready", Interval: time.Second, Timeout: 500 * time.Millisecond, FailureThreshold: 5},
				Scaling: Scaling{Overload: 150, Window: time.Minute, Idle: 20, Stabilization: time.Hour, Cooldown: 2 * time.Minute, Sample: 5 * time.Second}},
			want: Service{Drain: time.Second, Slots: 2, Replicas: Replicas{Min: 1, Initial: 2, Max: 4},
				Health:  HealthCheck{Path: "/ready", Interval: time.Second, Timeout: 500 * time.Millisecond, FailureThreshold: 5},
				Scaling: Scaling{Overload: 150, Window: time.Minute, Idle: 20, Stabilization: time.Hour, Cooldown: 2 * time.Minute, Sample: 5 * time.Second}},
		},
		{
			name: "some health fields set",
			in:   Service{Health: HealthCheck{Interval: 10 * time.Second}},
			want: Service{Drain: time.Second, Slots: 1, Health: HealthCheck{Path: "/healthz", Interval: 10 * time.Second, Timeout: time.Second, FailureThreshold: 3}, Scaling: defaultScaling},
		},
		{
			name: "negative values are left for Validate",
			in:   Service{Slots: -1, Replicas: Replicas{Min: -1, Max: -1}},
			want: Service{Drain: time.Second, Slots: -1, Health: defaultHealth, Replicas: Replicas{Min: -1, Initial: -1, Max: -1}, Scaling: defaultScaling},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Catalog{Services: []Service{tc.in}}
			c.Default()
			assert.Equal(t, tc.want, c.Services[0])
			assert.Equal(t, KindStandalone, c.Manager.Kind)
			assert.Equal(t, 0, c.Manager.WarmPool)

			again := *c
			again.Services = []Service{c.Services[0]}
			again.Default()
			assert.Equal(t, c.Services[0], again.Services[0], "Default is idempotent")
		})
	}
}

// TestDefaultScaling: each scaling field left at zero gets its default, and
// only those; a set value, even a wrong one, is kept for Validate to judge.
func TestDefaultScaling(t *testing.T) {
	tests := []struct {
		name string
		in   Scaling
		want Scaling
	}{
		{
			name: "everything left out",
			in:   Scaling{},
			want: Scaling{Overload: 80, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
		{
			name: "only overload set",
			in:   Scaling{Overload: 90},
			want: Scaling{Overload: 90, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
		{
			name: "only idle set",
			in:   Scaling{Idle: 5},
			want: Scaling{Overload: 80, Window: 10 * time.Second, Idle: 5, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
		{
			name: "only the durations set",
			in:   Scaling{Window: 2 * time.Second, Stabilization: 3 * time.Second, Cooldown: 4 * time.Second, Sample: 100 * time.Millisecond},
			want: Scaling{Overload: 80, Window: 2 * time.Second, Idle: 10, Stabilization: 3 * time.Second, Cooldown: 4 * time.Second, Sample: 100 * time.Millisecond},
		},
		{
			name: "only sample set",
			in:   Scaling{Sample: 250 * time.Millisecond},
			want: Scaling{Overload: 80, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: 250 * time.Millisecond},
		},
		{
			name: "everything set",
			in:   Scaling{Overload: 300, Window: time.Minute, Idle: 1, Stabilization: time.Hour, Cooldown: time.Nanosecond, Sample: time.Millisecond},
			want: Scaling{Overload: 300, Window: time.Minute, Idle: 1, Stabilization: time.Hour, Cooldown: time.Nanosecond, Sample: time.Millisecond},
		},
		{
			name: "negative values are left for Validate",
			in:   Scaling{Overload: -1, Window: -time.Second, Idle: -2, Stabilization: -time.Minute, Cooldown: -1, Sample: -time.Millisecond},
			want: Scaling{Overload: -1, Window: -time.Second, Idle: -2, Stabilization: -time.Minute, Cooldown: -1, Sample: -time.Millisecond},
		},
		{
			name: "idle above overload is left for Validate",
			in:   Scaling{Overload: 5},
			want: Scaling{Overload: 5, Window: 10 * time.Second, Idle: 10, Stabilization: 5 * time.Minute, Cooldown: 30 * time.Second, Sample: time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Catalog{Services: []Service{{Name: "web", Scaling: tc.in}}}
			c.Default()
			assert.Equal(t, tc.want, c.Services[0].Scaling)
			c.Default()
			assert.Equal(t, tc.want, c.Services[0].Scaling, "Default is idempotent")
		})
	}
}

func TestDefaultKeepsKind(t *testing.T) {
	c := &Catalog{Manager: Manager{Kind: KindDocker}}
	c.Default()
	assert.Equal(t, KindDocker, c.Manager.Kind)
}
