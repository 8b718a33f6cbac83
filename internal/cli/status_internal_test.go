package cli

import (
	"testing"

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
