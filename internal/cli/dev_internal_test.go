package cli

import (
	"testing"
	"time"
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
