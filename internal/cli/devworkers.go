package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/proc"
)

// extraWorkers are the `msm worker` processes msm dev runs beside its own
// worker, so that the Manager has another worker to fail over to: each
// polls the same task queues, and when one dies (kill -9 it to see) the
// others take its tasks within the Manager's timeouts
// (docs/operations.md). A worker that exits while msm dev runs is started
// again after restartPause; they all stop with msm dev.
type extraWorkers struct {
	wg sync.WaitGroup
}

// restartPause is how long msm dev waits before starting an exited worker
// again: long enough not to spin on one that cannot start.
const restartPause = time.Second

// workerSpec is how msm dev starts an extra worker: the binary, its
// arguments and environment, and the directory of its logs.
type workerSpec struct {
	bin  string
	args []string
	env  []string
	logs string
	// metrics says each worker serves its own metrics, on a free port of
	// the loopback said when it starts (what a worker counts in its own
	// memory, such as the updates it refused, is on its page only).
	metrics bool
}

// devWorkerSpec is the `msm worker` of this binary for msm dev's Manager:
// the same catalog, key ring, codec keys and Temporal settings; metrics of
// its own when msm dev serves some.
func (e *env) devWorkerSpec(c *common, catalogPath, ringFile, state string, metrics bool) (workerSpec, error) {
	self, err := os.Executable()
	if err != nil {
		return workerSpec{}, fmt.Errorf("finding the msm binary to start workers with, %w", err)
	}
	env := append(os.Environ(), c.Env()...)
	env = append(env, "MSM_MANAGER="+c.Manager, "MSM_CODEC_KEY_FILE="+c.CodecKeyFile)
	return workerSpec{
		bin:     self,
		args:    []string{"worker", "--catalog", catalogPath, "--key-file", ringFile},
		env:     env,
		logs:    state,
		metrics: metrics,
	}, nil
}

// start runs workers worker-2 … worker-<n+1> until ctx ends, saying on out
// when one starts and when one exits.
func (w *extraWorkers) start(ctx context.Context, spec workerSpec, n int, out io.Writer) {
	for i := range n {
		name := "worker-" + strconv.Itoa(i+2)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.keep(ctx, spec, name, out)
		}()
	}
}

// wait returns once every extra worker has stopped (after ctx ended).
func (w *extraWorkers) wait() { w.wg.Wait() }

// keep runs one worker, starting it again whenever it exits, until ctx ends;
// then it stops it (SIGTERM, and SIGKILL after 10 s).
func (w *extraWorkers) keep(ctx context.Context, spec workerSpec, name string, out io.Writer) {
	logPath := filepath.Join(spec.logs, name+".log")
	for ctx.Err() == nil {
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(out, "%s: cannot open its log %s: %v; not started\n", name, logPath, err)
			return
		}
		args, served := append(slices.Clip(spec.args), "--metrics-addr="), ""
		if spec.metrics {
			if port, err := devserver.FreePort(); err == nil {
				addr := "127.0.0.1:" + strconv.Itoa(port)
				args[len(args)-1] = "--metrics-addr=" + addr
				served = ", metrics http://" + addr + "/metrics"
			}
		}
		cmd := exec.Command(spec.bin, args...)
		cmd.Env = spec.env
		cmd.Stdout, cmd.Stderr = logf, logf
		done, err := proc.StartTied(cmd)
		if err != nil {
			logf.Close()
			fmt.Fprintf(out, "%s: cannot start %s: %v\n", name, spec.bin, err)
			return
		}
		fmt.Fprintf(out, "Worker %s running (pid %d, log %s%s)\n", name, cmd.Process.Pid, logPath, served)
		select {
		case err = <-done:
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logf.Close()
			return
		}
		logf.Close()
		fmt.Fprintf(out, "Worker %s (pid %d) exited (%s); the other workers carry on; starting it again in %s\n",
			name, cmd.Process.Pid, exitText(err), restartPause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(restartPause):
		}
	}
}

// exitText says how a process ended.
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return "signal: " + st.Signal().String()
		}
		return "exit status " + strconv.Itoa(ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
