package agent_test

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
	tools, err := vmtest.Find()
	if err != nil {
		t.Skipf("no VM here (%v); make test installs what it needs", err)
	}
	dir := t.TempDir()
	for _, b := range [][]string{
		{"test", "-c", "-o", filepath.Join(dir, "agent.test"), "."},
		{"build", "-o", filepath.Join(dir, "demo"), "../examples/demo"},
		{"build", "-o", filepath.Join(dir, "msm-agent"), "../cmd/msm-agent"},
	} {
		build := exec.Command("go", b...)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	began := time.Now()
	console, code, err := vmtest.Run(context.Background(), tools, vmtest.Options{
		Binary: filepath.Join(dir, "agent.test"),
		Args:   []string{"-test.v", "-test.run", "^(TestConfinedService|TestFailingConfinedService)"},
		Files:  map[string]string{"/vmtest/demo": filepath.Join(dir, "demo"), "/vmtest/msm-agent": filepath.Join(dir, "msm-agent")},
		Env:    []string{binEnv + "=/vmtest"},
	})
	t.Logf("the VM (%v):\n%s", time.Since(began).Round(time.Millisecond), console)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	for _, name := range []string{"TestConfinedServiceRunsAsItsOwnUser", "TestConfinedServiceLimits", "TestConfinedServiceCPULimit", "TestConfinedServiceRunAs", "TestFailingConfinedServiceIsKilledAndReported"} {
		assert.True(t, strings.Contains(console, "--- PASS: "+name), "%s ran, and passed, in the VM", name)
	}
}
