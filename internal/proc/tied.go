// Package proc starts child processes that die with their parent.
package proc

import (
	"os/exec"
	"runtime"
	"syscall"
)

// StartTied starts cmd so that the kernel kills it (SIGKILL) if this process
// dies, and returns a channel that receives cmd.Wait's result.
//
// Linux sends the parent-death signal when the *thread* that forked the child
// exits, not the process, and the Go runtime may retire threads. So the fork
// happens on a goroutine locked to its OS thread, and that goroutine stays
// there waiting for the child: the thread outlives the child, and only the
// parent process's death triggers the signal.
func StartTied(cmd *exec.Cmd) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread is discarded when this goroutine ends,
		// after the child is gone.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
