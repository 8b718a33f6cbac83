package cli

import (
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/internal/clicore"
)

// skipBinaryChecksum names this binary for the Temporal SDK by its build
// instead of by its bytes. Unless told, the SDK reads and hashes the whole
// executable (about 90 MB) when the process's first worker starts; the
// checksum marks workflow reset points, which only workflow workers
// record, and a node runs activities only. (The hash was ~150 ms of an
// agent's ~250 ms start when agents ran the SDK.)
func skipBinaryChecksum() {
	worker.SetBinaryChecksum(clicore.BuildID())
}
