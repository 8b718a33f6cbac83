package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/catalog"
)

// TestDevPollsLessOftenAtFleetSize: msm dev's status polls space out with
// the containers the status carries.
func TestDevPollsLessOftenAtFleetSize(t *testing.T) {
	for _, tc := range []struct {
		containers int
		want       time.Duration
	}{
		{0, 500 * time.Millisecond},
		{5, 500 * time.Millisecond},
		{2000, 500 * time.Millisecond},
		{2001, time.Second},
		{10100, 3 * time.Second},
		{15000, 4 * time.Second},
	} {
		if got := pollEvery(tc.containers); got != tc.want {
			t.Errorf("pollEvery(%d) = %s, want %s", tc.containers, got, tc.want)
		}
	}
}

func TestDevWorkers(t *testing.T) {
	for _, tc := range []struct {
		setting, kind string
		want          int
		err           string
	}{
		{"", catalog.KindStandalone, 2, ""},
		{"", catalog.KindSimulated, 1, ""},
		{"3", catalog.KindStandalone, 3, ""},
		{"1", catalog.KindStandalone, 1, ""},
		{"two", catalog.KindStandalone, 0, `MSM_WORKERS="two" is not a number of workers: give 1 or more`},
	} {
		got, err := devWorkers(tc.setting, tc.kind)
		if tc.err != "" {
			assert.EqualError(t, err, tc.err)
			continue
		}
		assert.NoError(t, err)
		assert.Equal(t, tc.want, got, "MSM_WORKERS=%q on %s", tc.setting, tc.kind)
	}
}
