package cgroup

import (
	"os"
	"testing"

	"github.com/msm-project/msm/internal/vmtest"
)

// TestLimitsInAVM runs this package's tests in a VM whose cgroup v2
// hierarchy has the memory, pids and cpu controllers, as a cgroup v2 host
// has: on a cgroup v1 host they would be skipped, and what the kernel holds
// a cgroup to would go untested.
func TestLimitsInAVM(t *testing.T) {
	if os.Getenv("MSM_IN_VM") != "" {
		t.Skip("in the VM already")
	}
	if V2(Root) {
		t.Skip("this host is cgroup v2: the tests ran here")
	}
	vmtest.Tests(t, ".", "^Test(Kill|Memory|Pids|CPU)",
		[]string{"TestKillTakesEveryProcess", "TestMemoryLimitIsHeld", "TestPidsLimitIsHeld", "TestCPULimitIsHeld"},
		nil, []string{"MSM_IN_VM=1"})
}
