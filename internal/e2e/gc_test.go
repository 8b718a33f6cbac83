package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestOrphanContainerIsCollected: a node comes back with a container the
// Manager does not know (left by an earlier run of it: a record and a
// running process group) beside the ones it does; the Manager has it
// reconciled, and only the orphan is stopped.
func TestOrphanContainerIsCollected(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 4, services: map[string]int{"web": 2}, order: []string{"web"}})
	state := filepath.Join(c.dir, "s1")
	c.start("s1", "node", "--server", "s1", "--state-dir", state)
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web healthy", 60*time.Second, converged(0))
	c.kill9("s1") // its containers keep running, as designed

	// The orphan: a process group of this Manager on s1 with a node record,
	// numbered below anything the Manager hands out.
	orphan := c.manager + "-c0"
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), "MSM_MANAGER="+c.manager, "MSM_CONTAINER="+orphan, "MSM_SERVER=s1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	require.NoError(t, err)
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	rec, err := json.Marshal(map[string]any{"container": orphan, "server": "s1", "manager": c.manager,
		"port": c.ranges["s1"][1], "pid": cmd.Process.Pid, "start": json.Number(fields[19]), "started": time.Now()})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(state, orphan+".json"), rec, 0o644))

	c.start("s1", "node", "--server", "s1", "--state-dir", state)
	st := c.waitFor("the orphan stopped", 30*time.Second, func(st workflows.Status) bool {
		return strings.Contains(eventsOf(st), "node s1: stopped 1 container(s) the Manager does not keep ["+orphan+"] (1 it did not know)")
	})
	waitGone(t, cmd.Process.Pid)
	_, err = os.Stat(filepath.Join(state, orphan+".json"))
	assert.True(t, os.IsNotExist(err), "its record is gone")
	st = c.requireInvariants(30 * time.Second)
	var ids, was []string
	for _, ct := range st.Containers {
		ids = append(ids, ct.ID)
	}
	for _, ct := range before.Containers {
		was = append(was, ct.ID)
	}
	assert.Equal(t, was, ids, "the known containers are untouched")
}

// waitGone waits until pid has exited (or is a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b[strings.LastIndexByte(string(b), ')'):]), ") Z") {
			return
		}
	}
	t.Fatalf("process %d still runs", pid)
}
