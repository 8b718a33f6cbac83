package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillUser kills every process of uid but the caller itself (an agent
// that runs as its service's user, in a Docker container of its own),
// until none is left or a few rounds passed (a fork bomb within its pids
// limit is caught in a few). uid 0 is never swept.
func KillUser(uid uint32) int {
	if uid == 0 {
		return 0
	}
	killed := 0
	for round := 0; round < 50; round++ {
		pids := UserProcesses(uid)
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

// UserProcesses lists the live processes whose real user is uid, but the
// caller's own.
func UserProcesses(uid uint32) []int { return OfUser(uid).PIDs }

// Usage is what the live processes of one user hold.
type Usage struct {
	PIDs []int
	// Tasks counts their threads: what RLIMIT_NPROC and a pids limit
	// count.
	Tasks int
	// RSS is the sum of their resident memory, in bytes.
	RSS int64
}

// OfUser reads the usage of the live processes whose real user is uid,
// the caller's own excepted, from /proc.
func OfUser(uid uint32) Usage {
	var u Usage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return u
	}
	want := strconv.FormatUint(uint64(uid), 10)
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		if st := parseStatus(b); st.live && st.uid == want {
			u.PIDs = append(u.PIDs, pid)
			u.Tasks += st.threads
			u.RSS += st.rss
		}
	}
	return u
}

// status is what OfUser reads of a /proc/PID/status.
type status struct {
	live    bool // not a zombie
	uid     string
	threads int   // at least one
	rss     int64 // bytes
}

func parseStatus(b []byte) status {
	st := status{live: true, threads: 1}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "State:":
			st.live = f[1] != "Z"
		case "Uid:":
			st.uid = f[1]
		case "Threads:":
			if n, err := strconv.Atoi(f[1]); err == nil && n > 0 {
				st.threads = n
			}
		case "VmRSS:": // "VmRSS:	  1234 kB"
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n >= 0 {
				st.rss = n << 10
			}
		}
	}
	return st
}
