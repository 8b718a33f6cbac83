package node

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	procfs "github.com/msm-project/msm/internal/proc"
)

// stat returns the fields of /proc/<pid>/stat from field 3 (state) on, so
// field k is f[k-3].
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	f, err := procfs.StatFields(b)
	if err != nil {
		return nil, fmt.Errorf("unexpected /proc/%d/stat: %v", pid, err)
	}
	if f[0] == "Z" || f[0] == "X" {
		return nil, fmt.Errorf("process %d has exited", pid)
	}
	return f, nil
}

// startTime returns the start time of a process in clock ticks since boot
// (field 22 of /proc/<pid>/stat). With the PID it identifies a process for
// good: a PID reused by another process has another start time.
func startTime(pid int) (uint64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// groupRunning reports whether a process of group pgid still runs. Zombies
// do not count: where nobody reaps orphans, they stay in the group.
func groupRunning(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := strconv.Itoa(pgid)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := stat(pid); err == nil && f[2] == want { // field 5: process group
			return true
		}
	}
	return false
}

// alive reports whether the process pid started at start is still running.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := startTime(pid)
	return err == nil && st == start
}

// stopGroup stops the process group that pid, started at start, leads: the
// agent and the MicroService it runs. It sends SIGTERM, waits up to grace for
// the leader to exit (the agent stops its MicroService), then sends SIGKILL to
// what is left. If the leader is already gone, the rest of its group may
// still run (an agent that crashed leaves its MicroService behind, holding
// its port); they get the same treatment, waited for as a group. A PID that
// another process holds now is left alone: Linux does not reuse a PID while
// a group of that ID has members, so our group is empty and that process's
// group is not ours.
func stopGroup(pid int, start uint64, grace time.Duration) {
	if pid <= 0 {
		return
	}
	st, err := startTime(pid)
	if err == nil && st != start {
		return
	}
	running := func() bool { return alive(pid, start) }
	if err != nil { // the leader is gone (or a zombie, which keeps its PID)
		running = func() bool { return groupRunning(pid) }
	}
	if syscall.Kill(-pid, syscall.SIGTERM) != nil {
		return // ESRCH: nothing is left of the group
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && running() {
		time.Sleep(20 * time.Millisecond)
	}
	// The group may hold a MicroService that ignored SIGTERM even after its
	// agent left.
	if syscall.Kill(-pid, syscall.SIGKILL) != nil {
		return
	}
	// Wait until the group is gone, so a caller that releases the port
	// lease next never hands out a port a dying process still holds.
	deadline = time.Now().Add(killWait)
	for time.Now().Before(deadline) && groupRunning(pid) {
		time.Sleep(10 * time.Millisecond)
	}
}

// killWait bounds the wait for SIGKILLed processes to be gone.
const killWait = 5 * time.Second
