package cgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	tools, err := vmtest.Find()
	if err != nil {
		t.Skipf("no VM here (%v); make test installs what it needs", err)
	}
	bin := filepath.Join(t.TempDir(), "cgroup.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	began := time.Now()
	console, code, err := vmtest.Run(context.Background(), tools, vmtest.Options{
		Binary: bin, Args: []string{"-test.v", "-test.run", "^Test(Kill|Memory|Pids|CPU)"}, Env: []string{"MSM_IN_VM=1"},
	})
	t.Logf("the VM (%v):\n%s", time.Since(began).Round(time.Millisecond), console)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	for _, name := range []string{"TestKillTakesEveryProcess", "TestMemoryLimitIsHeld", "TestPidsLimitIsHeld", "TestCPULimitIsHeld"} {
		assert.True(t, strings.Contains(console, "--- PASS: "+name), "%s ran, and passed, in the VM", name)
	}
}
