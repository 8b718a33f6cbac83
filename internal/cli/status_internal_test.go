package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/workflows"
)

// TestReportsLine: msm status says whether reports are authenticated, how
// many were rejected and the last rejection.
func TestReportsLine(t *testing.T) {
	for _, tc := range []struct {
		st   workflows.Status
		want string
	}{
		{workflows.Status{}, "NOT authenticated: any client of the namespace can report; run the worker with --key-file (msm keys new) and each node with --join-token-file"},
		{workflows.Status{Reports: workflows.ReportsAuthenticated}, "authenticated, 0 rejected"},
		{workflows.Status{Reports: workflows.ReportsAuthenticated, Rejected: 2, Events: []workflows.Event{
			{Message: "rejected usage report from server s1: no tag"}, {Message: "rejected node-up report from server s9: no tag"}, {Message: "msm/m/extend/web/3 done"},
		}}, "authenticated, 2 rejected; the last: rejected node-up report from server s9: no tag"},
	} {
		assert.Equal(t, tc.want, reportsLine(tc.st))
	}
}

// TestRedrawReplacesTheScreenInPlace: each frame is one write that homes
// the cursor, clears each line's rest and the screen below it: no blank
// screen between frames.
func TestRedrawReplacesTheScreenInPlace(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 30, 0, 0, time.Local)
	got := redraw("SERVICE  READY\nweb      3\n", at)
	assert.Equal(t, "\x1b[H"+
		"msm status --watch, 10:30:00 (Ctrl-C stops)\x1b[K\n\x1b[K\n"+
		"SERVICE  READY\x1b[K\n"+
		"web      3\x1b[K\n"+
		"\x1b[J", got)
	assert.NotContains(t, got, "\x1b[2J", "never clears the whole screen first (that flickers)")
	var b bytes.Buffer
	assert.False(t, isTerminal(&b), "a buffer is no terminal: frames follow one another")
}

// The FLOOR column is there only when a schedule rule set a floor.
func TestPrintStatusShowsFloorsWhenThereAreSome(t *testing.T) {
	rows := func(st workflows.Status) []string {
		var out bytes.Buffer
		printStatus(&out, st)
		var rows []string
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) > 0 && (f[0] == "SERVICE" || f[0] == "web" || f[0] == "api") {
				rows = append(rows, strings.Join(f, " "))
			}
		}
		return rows
	}
	st := workflows.Status{Manager: "dev", Kind: "standalone", Services: []workflows.ServiceStatus{{Name: "web", Ready: 2, Desired: 2}}}
	assert.Equal(t, []string{"SERVICE READY DESIRED", "web 2 2"}, rows(st))
	st.Services = append(st.Services, workflows.ServiceStatus{Name: "api", Ready: 3, Desired: 4, Floor: 4})
	assert.Equal(t, []string{"SERVICE READY DESIRED FLOOR", "web 2 2 -", "api 3 4 4"}, rows(st))
}

// A server whose lease timed out during an outage of Temporal is shown
// unheard, and until when the Manager waits for its node.
func TestPrintStatusShowsAServerUnheardAfterAnOutage(t *testing.T) {
	until := time.Date(2026, 12, 7, 10, 30, 5, 0, time.Local)
	var out bytes.Buffer
	printStatus(&out, workflows.Status{Servers: []workflows.ServerStatus{
		{ID: "s1", State: "ready", Address: "10.0.0.1", Slots: 4, Used: 2, UnheardUntil: &until},
		{ID: "s2", State: "ready", Address: "10.0.0.2", Slots: 4, Used: 1},
	}})
	assert.Regexp(t, `s1 +ready, unheard +10\.0\.0\.1`, out.String())
	assert.Regexp(t, `s2 +ready +10\.0\.0\.2`, out.String())
	assert.Contains(t, out.String(), "\nUNHEARD s1: its lease timed out while Temporal or the Manager was away; nothing of it is recovered unless its node has not leased again by 10:30:05\n")
	assert.NotContains(t, out.String(), "UNHEARD s2")
}
