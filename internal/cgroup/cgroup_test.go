package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helperEnv makes this test binary a helper process (helper) instead of
// running the tests: what the processes in the tests' cgroups run.
const helperEnv = "MSM_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		helper(h)
		return
	}
	os.Exit(m.Run())
}

// helper runs one of the helpers: "sleep"; "setsid" (a child in a session
// of its own, then sleep); "hog N" (N MiB touched, then sleep); "bomb"
// (children until a start fails, then sleep); "spin" (burn CPU).
func helper(what string) {
	self, _ := os.Executable()
	child := func(mode string, attr *syscall.SysProcAttr) error {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), helperEnv+"="+mode)
		cmd.SysProcAttr = attr
		return cmd.Start()
	}
	switch {
	case what == "setsid":
		if err := child("sleep", &syscall.SysProcAttr{Setsid: true}); err != nil {
			fmt.Println("setsid child:", err)
			os.Exit(1)
		}
	case what == "bomb":
		for i := 0; i < 1000; i++ {
			if err := child("sleep", nil); err != nil {
				fmt.Println("a start failed after", i, "children:", err)
				break
			}
		}
	case what == "spin":
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		}
	case len(what) > 4 && what[:4] == "hog ":
		n, _ := strconv.Atoi(what[4:])
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("holding", n, "MiB")
	}
	time.Sleep(time.Hour)
}

// start runs a helper in g.
func start(t *testing.T, g Group, what string) *exec.Cmd {
	t.Helper()
	f, err := g.Open()
	require.NoError(t, err)
	defer f.Close()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+what)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// testRoot is a cgroup v2 directory the test may make cgroups in: the
// host's hierarchy when it is v2, else a cgroup2 mount of the test's own
// (whose controllers are those the host's v1 hierarchies left over).
func testRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making cgroups needs root")
	}
	if V2(Root) {
		return Root
	}
	dir := t.TempDir()
	if err := syscall.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		t.Skipf("no cgroup v2 here: mounting one: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// group makes a cgroup of the test's own under root, removed at its end.
func group(t *testing.T, controllers ...string) Group {
	t.Helper()
	root := testRoot(t)
	base, err := Make(root, fmt.Sprintf("msm-test-%d", os.Getpid()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = base.Remove() })
	g, err := base.Child(filepath.Base(t.Name()))
	require.NoError(t, err)
	for _, c := range controllers {
		if !g.Has(c) {
			t.Skipf("the %s controller is not available here (a cgroup v1 host): the VM test runs this", c)
		}
	}
	return g
}

// TestKillTakesEveryProcess: a child in a session of its own is in its
// parent's cgroup, and goes with it.
func TestKillTakesEveryProcess(t *testing.T) {
	g := group(t)
	cmd := start(t, g, "setsid")
	require.Eventually(t, func() bool { return len(g.Procs()) == 2 }, 10*time.Second, 20*time.Millisecond, "the helper and its setsid child: %v", g.Procs())
	procs := g.Procs()
	require.True(t, g.Populated())
	require.NoError(t, g.Kill(5*time.Second))
	assert.False(t, g.Populated())
	assert.Empty(t, g.Procs())
	_ = cmd.Wait()
	for _, pid := range procs {
		assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 5*time.Second, 20*time.Millisecond, "process %d is gone", pid)
	}
	require.NoError(t, g.Remove())
	_, err := os.Stat(g.Path)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestMemoryLimitIsHeld: past memory.max, the kernel kills the process
// (an oom_kill in memory.events).
func TestMemoryLimitIsHeld(t *testing.T) {
	g := group(t, "memory")
	require.NoError(t, g.Set(Limits{Memory: 48 << 20}))
	cmd := start(t, g, "hog 200")
	err := cmd.Wait()
	require.Error(t, err, "the hog was killed")
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
	ev, err := g.Events("memory.events")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ev["oom_kill"], int64(1))
}

// TestPidsLimitIsHeld: forks past pids.max fail (a max in pids.events),
// and the cgroup never holds more.
func TestPidsLimitIsHeld(t *testing.T) {
	g := group(t, "pids")
	require.NoError(t, g.Set(Limits{Pids: 24}))
	start(t, g, "bomb")
	require.Eventually(t, func() bool {
		ev, err := g.Events("pids.events")
		return err == nil && ev["max"] > 0
	}, 30*time.Second, 50*time.Millisecond, "a fork met the limit")
	n, err := g.Value("pids.current")
	require.NoError(t, err)
	assert.LessOrEqual(t, n, int64(24))
	require.NoError(t, g.Kill(5*time.Second))
}

// TestCPULimitIsHeld: a process that spins under cpu.max of a tenth of a
// CPU is throttled.
func TestCPULimitIsHeld(t *testing.T) {
	g := group(t, "cpu")
	require.NoError(t, g.Set(Limits{CPU: 100}))
	start(t, g, "spin")
	began := time.Now()
	time.Sleep(2 * time.Second)
	st, err := g.Events("cpu.stat")
	require.NoError(t, err)
	wall := time.Since(began)
	assert.Positive(t, st["nr_throttled"])
	used := time.Duration(st["usage_usec"]) * time.Microsecond
	assert.Less(t, used, wall/3, "a tenth of a CPU over %v: used %v", wall, used)
	require.NoError(t, g.Kill(5*time.Second))
}

// TestMakeRefusesWhatIsNotCgroupV2: a plain directory is no hierarchy.
func TestMakeRefusesWhatIsNotCgroupV2(t *testing.T) {
	_, err := Make(t.TempDir(), "x")
	require.ErrorContains(t, err, "is not a cgroup v2 hierarchy")
}
