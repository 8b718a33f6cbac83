package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/workflows/agentapi"
)

// ExecConfined is the hidden argument that turns the agent's own binary
// into the confining shim: `<agent> exec-confined [--uid N] [--memory B]
// [--pids N] -- PROGRAM ARGS...` sets the limits, drops to the user and
// executes PROGRAM (ExecConfinedMain). Setting them in the child before it
// executes the service leaves no moment in which the service runs unbound.
const ExecConfined = "exec-confined"

// confinedCommand is the command that starts name with args confined: as
// the container's own user when the agent runs as root, within limits.
// Without a shim (Config.Shim) or anything to confine, it is the command
// itself.
func (a *Agent) confinedCommand(name string, args []string, limits catalog.Limits) (*exec.Cmd, uint32, error) {
	memory, err := limits.MemoryBytes()
	if err != nil {
		return nil, 0, err
	}
	uid := uint32(0)
	if os.Geteuid() == 0 {
		uid = agentapi.ServiceUID(a.cfg.Manager, a.cfg.Container)
	}
	if len(a.cfg.Shim) == 0 || (uid == 0 && memory == 0 && limits.Pids == 0) {
		return exec.Command(name, args...), 0, nil
	}
	argv := append(append([]string{}, a.cfg.Shim[1:]...), ExecConfined)
	if uid != 0 {
		argv = append(argv, "--uid", strconv.FormatUint(uint64(uid), 10))
	}
	if memory > 0 {
		argv = append(argv, "--memory", strconv.FormatInt(memory, 10))
	}
	if limits.Pids > 0 {
		argv = append(argv, "--pids", strconv.Itoa(limits.Pids))
	}
	argv = append(append(argv, "--", name), args...)
	return exec.Command(a.cfg.Shim[0], argv...), uid, nil
}

// ExecConfinedMain is the shim: args are what follows ExecConfined. It
// returns only on error.
func ExecConfinedMain(args []string) error {
	var uid, memory, pids uint64
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return fmt.Errorf("%s: %s needs a value", ExecConfined, args[0])
		}
		n, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %s %q is not a number", ExecConfined, args[0], args[1])
		}
		switch args[0] {
		case "--uid":
			uid = n
		case "--memory":
			memory = n
		case "--pids":
			pids = n
		default:
			return fmt.Errorf("%s: unknown flag %s", ExecConfined, args[0])
		}
		args = args[2:]
	}
	if len(args) < 2 {
		return fmt.Errorf("%s: want -- PROGRAM ARGS", ExecConfined)
	}
	prog, err := exec.LookPath(args[1])
	if err != nil {
		return fmt.Errorf("%s: %w", ExecConfined, err)
	}
	if memory > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: memory, Max: memory}); err != nil {
			return fmt.Errorf("%s: limiting memory, %w", ExecConfined, err)
		}
	}
	if pids > 0 {
		if err := syscall.Setrlimit(rlimitNproc, &syscall.Rlimit{Cur: pids, Max: pids}); err != nil {
			return fmt.Errorf("%s: limiting processes, %w", ExecConfined, err)
		}
	}
	parent := os.Getppid()
	if uid != 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("%s: dropping groups, %w", ExecConfined, err)
		}
		if err := syscall.Setgid(int(uid)); err != nil {
			return fmt.Errorf("%s: setgid, %w", ExecConfined, err)
		}
		if err := syscall.Setuid(int(uid)); err != nil {
			return fmt.Errorf("%s: setuid, %w", ExecConfined, err)
		}
		// Changing the user clears the parent-death signal: set it again,
		// so that the service still dies with its agent.
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e != 0 {
			return fmt.Errorf("%s: parent-death signal, %v", ExecConfined, e)
		}
		if os.Getppid() != parent {
			return fmt.Errorf("%s: the agent is gone", ExecConfined)
		}
		if err := syscall.Access(prog, 1); err != nil { // X_OK, as that user
			return fmt.Errorf("the service's program %s cannot be run by its container's user %d (%v): make it, and every directory above it, readable and searchable by others (chmod o+rx), or run the node as a user other than root", prog, uid, err)
		}
	}
	// Its environment is the one the agent gave this shim: the service's.
	return syscall.Exec(prog, args[1:], os.Environ())
}

// rlimitNproc is RLIMIT_NPROC on Linux.
const rlimitNproc = 6
