package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillUser kills every process of uid, until none is left or a few
// rounds passed (a fork bomb within its pids limit is caught in a few).
// uid 0 is never swept.
func KillUser(uid uint32) int {
	if uid == 0 {
		return 0
	}
	killed := 0
	for round := 0; round < 50; round++ {
		pids := processesOf(uid)
		if len(pids) == 0 {
			return killed
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return killed
}

// processesOf lists the live processes whose real user is uid.
func processesOf(uid uint32) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.FormatUint(uint64(uid), 10)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" && f[1] == want {
				if !zombie(b) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

func zombie(status []byte) bool {
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "State:") {
			return strings.Contains(line, "Z")
		}
	}
	return false
}
