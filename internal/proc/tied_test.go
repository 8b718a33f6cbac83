package proc

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestChildOutlivesTheStartingGoroutine: the child is not killed when the
// goroutine (and its thread) that asked for the start is gone, and it is
// killed when its parent process dies.
func TestTiedChild(t *testing.T) {
	if os.Getenv("PROC_TEST_PARENT") != "" {
		// The parent: start a tied sleep from a goroutine that locks and
		// exits its own thread, print the child's PID, then wait.
		pidc := make(chan int)
		go func() {
			runtime.LockOSThread() // this thread is destroyed when the goroutine ends
			cmd := exec.Command("sleep", "60")
			if _, err := StartTied(cmd); err != nil {
				panic(err)
			}
			pidc <- cmd.Process.Pid
		}()
		os.Stdout.WriteString(strconv.Itoa(<-pidc) + "\n")
		time.Sleep(time.Minute)
		return
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestTiedChild$")
	parent.Env = append(os.Environ(), "PROC_TEST_PARENT=1")
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	defer parent.Process.Kill()
	buf := make([]byte, 32)
	n, err := out.Read(buf)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(buf[:n-1]))
	require.NoError(t, err)
	defer syscall.Kill(pid, syscall.SIGKILL)

	time.Sleep(300 * time.Millisecond)
	require.NoError(t, syscall.Kill(pid, 0), "the child must survive its starter goroutine's thread")
	require.NoError(t, parent.Process.Kill())
	_ = parent.Wait()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || len(b) == 0 || stateOf(b) == 'Z'
	}, 5*time.Second, 20*time.Millisecond, "the child dies with its parent")
}

func stateOf(stat []byte) byte {
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2]
		}
	}
	return 0
}
