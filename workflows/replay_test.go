package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	msmworker "github.com/msm-project/msm/worker"
)

// TestReplayHistories replays histories recorded from real runs (testdata/,
// refreshed by `MSM_UPDATE_TESTDATA=1 go test ./internal/e2e/`) against the
// current workflow code: a change that breaks determinism for runs already
// in flight fails here.
func TestReplayHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			msmworker.RegisterWorkflows(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
