package proc

import (
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     status
	}{
		{"running", "Name:\tdemo\nState:\tS (sleeping)\nUid:\t1073741825\t1073741825\t1073741825\t1073741825\nVmRSS:\t   12345 kB\nThreads:\t7\n",
			status{live: true, uid: "1073741825", threads: 7, rss: 12345 << 10}},
		{"zombie", "State:\tZ (zombie)\nUid:\t5\t5\t5\t5\nThreads:\t1\n", status{live: false, uid: "5", threads: 1}},
		{"kernel thread: no memory", "State:\tI (idle)\nUid:\t0\t0\t0\t0\nThreads:\t1\n", status{live: true, uid: "0", threads: 1}},
		{"truncated", "State:\nUid:", status{live: true, threads: 1}},
		{"garbage numbers", "Uid:\t7\nThreads:\t-3\nVmRSS:\tx kB\n", status{live: true, uid: "7", threads: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, parseStatus([]byte(tc.in))) })
	}
}

// TestOfUserCountsAUsersProcesses: the usage of the user of a process
// this test starts (its own, when it runs as another user than root; the
// sleep's count among this user's otherwise) includes the sleep.
func TestOfUserCountsAUsersProcesses(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u := OfUser(uint32(os.Getuid()))
	assert.Contains(t, u.PIDs, cmd.Process.Pid)
	assert.NotContains(t, u.PIDs, os.Getpid(), "the caller is never counted")
	assert.GreaterOrEqual(t, u.Tasks, len(u.PIDs))
	assert.Positive(t, u.RSS)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(os.Getuid()), parseStatus(b).uid)
}
