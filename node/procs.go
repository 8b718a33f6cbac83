package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTime returns the start time of a process in clock ticks since boot
// (field 22 of /proc/<pid>/stat). With the PID it identifies a process for
// good: a PID reused by another process has another start time.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it start
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid started at start is still running.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := startTime(pid)
	return err == nil && st == start
}

// stopGroup sends SIGTERM to the process group of pid (the agent and the
// MicroService it runs), waits up to grace for the leader to exit, then
// sends SIGKILL.
func stopGroup(pid int, start uint64, grace time.Duration) {
	if !alive(pid, start) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid, start) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The group may hold a MicroService that ignored SIGTERM even after its
	// agent left.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// portFree reports whether nothing on this host listens on port, on any
// address: binding the wildcard address fails if any address holds it.
func portFree(port int) error {
	for _, addr := range []string{":" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("port %d is in use on this host", port)
			}
			return fmt.Errorf("checking port %d, %w", port, err)
		}
		_ = l.Close()
	}
	return nil
}
