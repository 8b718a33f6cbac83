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
				if r := l.observe(start.Add(time.Duration(i)*time.Second), pct); r != "" {
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
