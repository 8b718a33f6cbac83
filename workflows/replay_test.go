package workflows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/internal/trust"
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
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
			var o worker.WorkflowReplayerOptions
			// A run recorded with a key ring (<name>.keys beside it, a test
			// key) replays with it: the tags are checked again.
			if b, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".keys"); err == nil {
				var keys []trust.Key
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if k, err := trust.ParseKey(line); err == nil {
						keys = append(keys, k)
					}
				}
				ring, err := trust.NewRing(keys...)
				require.NoError(t, err)
				o.Interceptors = []interceptor.WorkerInterceptor{workflows.TrustInterceptor(ring)}
			}
			r, err := worker.NewWorkflowReplayerWithOptions(o)
			require.NoError(t, err)
			msmworker.RegisterWorkflows(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
