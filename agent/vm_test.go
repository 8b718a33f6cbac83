package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/internal/vmtest"
)

// TestConfinementInAVM runs the confinement tests in a VM whose cgroup
// v2 hierarchy has the memory and pids controllers, as a cgroup v2 host
// has: there each service runs in its container's cgroup, held to its
// limits by the kernel, and is killed whole. On this cgroup v1 host they
// run with rlimits.
func TestConfinementInAVM(t *testing.T) {
	if os.Getenv(binEnv) != "" {
		t.Skip("in the VM already")
	}
	if cgroup.V2(cgroup.Root) {
		t.Skip("this host is cgroup v2: the tests ran here with cgroups")
	}
	if _, err := vmtest.Find(); err != nil {
		t.Skipf("no VM here (%v); make test installs what it needs", err)
	}
	dir := t.TempDir()
	for _, b := range [][2]string{{"demo", "../examples/demo"}, {"msm-agent", "../cmd/msm-agent"}} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, b[0]), b[1])
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	vmtest.Tests(t, ".", "^(TestConfinedService|TestFailingConfinedService)",
		[]string{"TestConfinedServiceRunsAsItsOwnUser", "TestConfinedServiceLimits", "TestConfinedServiceCPULimit",
			"TestConfinedServiceRunAs", "TestFailingConfinedServiceIsKilledAndReported"},
		map[string]string{"/vmtest/demo": filepath.Join(dir, "demo"), "/vmtest/msm-agent": filepath.Join(dir, "msm-agent")},
		[]string{binEnv + "=/vmtest"})
}
