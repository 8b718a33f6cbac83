package catalog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDefault(t *testing.T) {
	defaultHealth := HealthCheck{Path: "/healthz", Interval: 2 * time.Second, Timeout: time.Second, FailureThreshold: 3}
	tests := []struct {
		name string
		in   Service
		want Service
	}{
		{
			name: "everything left out",
			in:   Service{Name: "web"},
			want: Service{Name: "web", Slots: 1, Health: defaultHealth},
		},
		{
			name: "initial from min, max from min",
			in:   Service{Replicas: Replicas{Min: 2}},
			want: Service{Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 2, Initial: 2, Max: 2}},
		},
		{
			name: "max from initial",
			in:   Service{Replicas: Replicas{Min: 1, Initial: 3}},
			want: Service{Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 1, Initial: 3, Max: 3}},
		},
		{
			name: "max kept",
			in:   Service{Replicas: Replicas{Min: 1, Max: 5}},
			want: Service{Slots: 1, Health: defaultHealth, Replicas: Replicas{Min: 1, Initial: 1, Max: 5}},
		},
		{
			name: "set fields kept",
			in: Service{Slots: 2, Replicas: Replicas{Min: 1, Initial: 2, Max: 4},
				Health: HealthCheck{Path: "/ready", Interval: time.Second, Timeout: 500 * time.Millisecond, FailureThreshold: 5}},
			want: Service{Slots: 2, Replicas: Replicas{Min: 1, Initial: 2, Max: 4},
				Health: HealthCheck{Path: "/ready", Interval: time.Second, Timeout: 500 * time.Millisecond, FailureThreshold: 5}},
		},
		{
			name: "some health fields set",
			in:   Service{Health: HealthCheck{Interval: 10 * time.Second}},
			want: Service{Slots: 1, Health: HealthCheck{Path: "/healthz", Interval: 10 * time.Second, Timeout: time.Second, FailureThreshold: 3}},
		},
		{
			name: "negative values are left for Validate",
			in:   Service{Slots: -1, Replicas: Replicas{Min: -1, Max: -1}},
			want: Service{Slots: -1, Health: defaultHealth, Replicas: Replicas{Min: -1, Initial: -1, Max: -1}},
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

func TestDefaultKeepsKind(t *testing.T) {
	c := &Catalog{Manager: Manager{Kind: KindDocker}}
	c.Default()
	assert.Equal(t, KindDocker, c.Manager.Kind)
}
