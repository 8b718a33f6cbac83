package agent

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// TestLoadObserve drives the policy with samples one second apart.
func TestLoadObserve(t *testing.T) {
	policy := catalog.Scaling{Overload: 80, Window: 3 * time.Second, Idle: 10, Stabilization: 4 * time.Second, Cooldown: 5 * time.Second, Sample: time.Second}
	tests := []struct {
		name    string
		samples []int
		want    map[int]string // sample index -> report
	}{
		{"steady load reports nothing", []int{50, 50, 50, 50, 50, 50}, nil},
		{"overload after the window, once per cooldown", []int{90, 90, 90, 90, 90, 90, 90, 90, 90, 90}, map[int]string{3: "overload", 8: "overload"}},
		{"a dip restarts the window", []int{90, 90, 50, 90, 90, 90, 90}, map[int]string{6: "overload"}},
		{"idle after the stabilization window", []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, map[int]string{4: "idle", 8: "idle"}},
		{"load resets idleness", []int{5, 5, 5, 50, 5, 5, 5, 5, 5}, map[int]string{8: "idle"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &load{policy: policy}
			start := time.Unix(1000, 0)
			got := map[int]string{}
			for i, pct := range tc.samples {
				if r := l.observe(start.Add(time.Duration(i)*time.Second), pct, -1); r != "" {
					got[i] = r
				}
			}
			if tc.want == nil {
				tc.want = map[int]string{}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCPUTicksOfThisProcess(t *testing.T) {
	before, err := cpuTicks(os.Getpid())
	require.NoError(t, err)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := cpuTicks(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, after, before, "burning CPU shows in /proc")
	_, err = cpuTicks(1 << 30)
	assert.Error(t, err)
}

// TestLoadObserveInFlight: with an in-flight threshold, requests waiting
// count as overload even at low CPU, and an instance with requests in
// flight is never idle.
func TestLoadObserveInFlight(t *testing.T) {
	policy := catalog.Scaling{Overload: 80, Window: 2 * time.Second, Idle: 10, Stabilization: 3 * time.Second, Cooldown: time.Minute, InFlight: 4}
	tests := []struct {
		name     string
		cpu, inf []int
		want     map[int]string
	}{
		{"many in flight at low cpu: overload", []int{5, 5, 5, 5}, []int{9, 9, 9, 9}, map[int]string{2: "overload"}},
		{"a few in flight: neither", []int{5, 5, 5, 5, 5}, []int{2, 2, 2, 2, 2}, nil},
		{"none in flight and low cpu: idle", []int{5, 5, 5, 5, 5}, []int{0, 0, 0, 0, 0}, map[int]string{3: "idle"}},
		{"metrics unknown: cpu alone decides", []int{5, 5, 5, 5, 5}, []int{-1, -1, -1, -1, -1}, map[int]string{3: "idle"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &load{policy: policy}
			got := map[int]string{}
			for i := range tc.cpu {
				if r := l.observe(time.Unix(int64(1000+i), 0), tc.cpu[i], tc.inf[i]); r != "" {
					got[i] = r
				}
			}
			if tc.want == nil {
				tc.want = map[int]string{}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
