package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/internal/proc"
	"github.com/msm-project/msm/workflows/agentapi"
)

// ExecConfined is the hidden argument that turns the agent's own binary
// into the confining shim: `<agent> exec-confined [--uid N] [--memory B]
// [--pids N] -- PROGRAM ARGS...` sets the limits, drops to the user and
// executes PROGRAM (ExecConfinedMain). Setting them in the child before it
// executes the service leaves no moment in which the service runs unbound.
const ExecConfined = "exec-confined"

// confinedCommand is the command that starts name with args confined: as
// the container's own user when the agent runs as root, within limits
// (rlimits, unless kernelHeld: its cgroup holds them).
// The uid it returns is the user every process of the service runs as
// when that user is the container's own (0 when it is not): the one to
// count and to sweep. An agent already running as its container's own user
// (a Docker container of its own, see node.Docker) keeps it. A pids limit
// needs such a user: RLIMIT_NPROC counts every process of the user, so
// without one it is not set (and the load says so in the agent's log).
// With runAs (the catalog's run_as) the service runs as that user instead,
// whose processes are not the container's alone: the uid returned is 0,
// and its cgroup finds them. Without a shim (Config.Shim) or anything to
// confine, it is the command itself.
func (a *Agent) confinedCommand(name string, args []string, b bounds, kernelHeld bool, runAs *account) (*exec.Cmd, uint32, error) {
	if runAs != nil {
		if len(a.cfg.Shim) == 0 {
			return nil, 0, errors.New("run_as needs the agent's confining shim")
		}
		argv := append(append([]string{}, a.cfg.Shim[1:]...), ExecConfined,
			"--uid", strconv.FormatUint(uint64(runAs.uid), 10), "--gid", strconv.FormatUint(uint64(runAs.gid), 10), "--")
		return exec.Command(a.cfg.Shim[0], append(append(argv, name), args...)...), 0, nil
	}
	uid, own := uint32(0), agentapi.ServiceUID(a.cfg.Manager, a.cfg.Container)
	if euid := os.Geteuid(); euid == 0 || uint32(euid) == own {
		uid = own
	}
	memory, pids := b.memory, b.pids
	if kernelHeld { // its cgroup holds them
		memory, pids = 0, 0
	}
	if pids > 0 && uid == 0 {
		a.cfg.Log.Warn("the service's pids limit is not enforced: its container has no user of its own (run the node as root)", "pids", pids)
		pids = 0
	}
	switchUser := uid != 0 && os.Geteuid() == 0
	if len(a.cfg.Shim) == 0 || (!switchUser && memory == 0 && pids == 0) {
		return exec.Command(name, args...), uid, nil
	}
	argv := append(append([]string{}, a.cfg.Shim[1:]...), ExecConfined)
	if switchUser {
		argv = append(argv, "--uid", strconv.FormatUint(uint64(uid), 10))
	}
	if memory > 0 {
		argv = append(argv, "--data", strconv.FormatUint(dataBackstop(memory), 10))
	}
	if pids > 0 {
		argv = append(argv, "--pids", strconv.Itoa(pids))
	}
	argv = append(append(argv, "--", name), args...)
	return exec.Command(a.cfg.Shim[0], argv...), uid, nil
}

// ExecConfinedMain is the shim: args are what follows ExecConfined. It
// returns only on error.
func ExecConfinedMain(args []string) error {
	var uid, gid, data, pids uint64
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
		case "--gid":
			gid = n
		case "--data":
			data = n
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
	if data > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: data, Max: data}); err != nil {
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
		if gid == 0 {
			gid = uid // the user's own group
		}
		if err := syscall.Setgid(int(gid)); err != nil {
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

// dataBackstop is the RLIMIT_DATA of a service whose memory limit is
// memory. The limit itself is on resident memory, sampled by the agent
// (breach): the data segment counts address space merely reserved (a Go
// program reserves more than 64 MiB before it allocates a byte), so this
// bound is only a backstop against an allocation faster than the samples.
func dataBackstop(memory int64) uint64 { return uint64(2*memory + 512<<20) }

// limitEvery is how often the agent checks a confined service's limits.
const limitEvery = time.Second

// breach says how the service l is past its limits, or "". In a cgroup
// that holds them, the kernel says: a fork it refused at pids.max (a fork
// bomb), a process it killed past memory.max. Otherwise, from /proc, of the
// processes of its user (the agent itself not counted, when it runs as
// that user too): their tasks (processes and threads, as RLIMIT_NPROC
// counts them) at pids, or one short of it (the process whose fork failed
// has often exited), or their resident memory above memory bytes.
func (l *loaded) breach() string {
	if l.cg != nil && l.held {
		if l.pids > 0 {
			if ev, err := l.cg.Events("pids.events"); err == nil && ev["max"] > 0 {
				return fmt.Sprintf("reached its limit of %d processes (limits.pids: the kernel refused it %d forks)", l.pids, ev["max"])
			}
		}
		if l.memory > 0 {
			if ev, err := l.cg.Events("memory.events"); err == nil && ev["oom_kill"] > 0 {
				return fmt.Sprintf("went past its memory limit of %d MiB (limits.memory: the kernel killed %d of its processes)", l.memory>>20, ev["oom_kill"])
			}
		}
		return ""
	}
	if l.uid == 0 || (l.pids <= 0 && l.memory <= 0) {
		return ""
	}
	u := proc.OfUser(l.uid)
	switch {
	case l.pids > 0 && u.Tasks >= l.pids-1:
		return fmt.Sprintf("reached its limit of %d processes (limits.pids: %d tasks in %d processes)", l.pids, u.Tasks, len(u.PIDs))
	case l.memory > 0 && u.RSS > l.memory:
		return fmt.Sprintf("used %d MiB of memory, past its memory limit of %d MiB (limits.memory)", u.RSS>>20, l.memory>>20)
	}
	return ""
}

// kill kills every process of the service l: its cgroup's, its user's.
func (l *loaded) kill() int {
	killed := 0
	if l.cg != nil {
		killed = len(l.cg.Procs())
		_ = l.cg.Kill(5 * time.Second)
	}
	return killed + proc.KillUser(l.uid)
}

// usage says what the processes of the service l hold against its
// limits, or "" when it has none.
func (l *loaded) usage() string {
	if l.pids <= 0 && l.memory <= 0 {
		return ""
	}
	var tasks, procs int
	var rss int64
	switch {
	case l.cg != nil:
		n, _ := l.cg.Value("pids.current")
		tasks, procs = int(n), len(l.cg.Procs())
		rss, _ = l.cg.Value("memory.current")
	case l.uid != 0:
		u := proc.OfUser(l.uid)
		tasks, procs, rss = u.Tasks, len(u.PIDs), u.RSS
	default:
		return ""
	}
	var parts []string
	if l.pids > 0 {
		parts = append(parts, fmt.Sprintf("%d tasks in %d processes left, limits.pids: %d", tasks, procs, l.pids))
	}
	if l.memory > 0 {
		parts = append(parts, fmt.Sprintf("%d MiB in use, limits.memory: %d MiB", rss>>20, l.memory>>20))
	}
	return strings.Join(parts, "; ")
}

// serviceCgroup makes the cgroup the service runs in, service in the
// container's (Config.Cgroup), empty (what an earlier load left is
// killed), and sets the limits there when the hierarchy has their
// controllers: held says so, else rlimits hold them. Nil without a
// container cgroup, or when the agent is not root.
func (a *Agent) serviceCgroup(b bounds) (cg *cgroup.Group, held bool, err error) {
	if a.cfg.Cgroup == "" || os.Geteuid() != 0 {
		return nil, false, nil
	}
	container := cgroup.Group{Path: a.cfg.Cgroup}
	// Fresh counters: its events are this load's.
	if err := (cgroup.Group{Path: filepath.Join(container.Path, "service")}).Remove(); err != nil {
		return nil, false, err
	}
	g, err := container.Child("service")
	if err != nil {
		return nil, false, err
	}
	held = (b.memory == 0 || g.Has("memory")) && (b.pids == 0 || g.Has("pids")) && (b.cpu == 0 || g.Has("cpu"))
	if held {
		if err := g.Set(cgroup.Limits{Memory: b.memory, Pids: b.pids, CPU: b.cpu}); err != nil {
			return nil, false, err
		}
	}
	return &g, held, nil
}

// bounds are a service's limits, read once: memory in bytes, cpu in
// thousandths of a CPU, zero for none.
type bounds struct {
	memory    int64
	pids, cpu int
}

func (b bounds) none() bool { return b == bounds{} }

// boundsOf reads l.
func boundsOf(l catalog.Limits) (bounds, error) {
	memory, err := l.MemoryBytes()
	if err != nil {
		return bounds{}, err
	}
	cpu, err := l.CPUMillis()
	if err != nil {
		return bounds{}, err
	}
	return bounds{memory: memory, pids: l.Pids, cpu: cpu}, nil
}

// limitsNote is what a failure of the service l says of its limits: how
// it is past them, else what it uses of them, else nothing.
func (l *loaded) limitsNote() string {
	if why := l.breach(); why != "" {
		return "; it " + why
	}
	if use := l.usage(); use != "" {
		return "; " + use
	}
	return ""
}

// account is a user and group a service runs as (run_as).
type account struct{ uid, gid uint32 }

// runAs resolves the catalog's run_as for a service confined in cg (its
// limits held there when held): a user name (its group is its passwd
// entry's), a number, or a number with a group. It needs the agent to run
// as root and the service's cgroup: a user others may share leaves its
// processes told apart by their cgroup alone.
func (a *Agent) runAs(s string, cg *cgroup.Group, held bool, b bounds) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("run_as %q needs the node and its agents to run as root", s)
	}
	if cg == nil {
		return nil, fmt.Errorf("run_as %q needs a node on a cgroup v2 host (it gives each container a cgroup): the processes of a user others may share could not be found to stop them; leave run_as out here", s)
	}
	if !b.none() && !held {
		return nil, fmt.Errorf("run_as %q with limits needs the cgroup's memory, pids and cpu controllers, which this host does not give it", s)
	}
	name, group, hasGroup := strings.Cut(s, ":")
	var acct account
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		acct = account{uid: uint32(n), gid: uint32(n)}
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("run_as %q: %v; create the user on every server, or name another", s, err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("run_as %q: user %s has uid %s, gid %s", s, name, u.Uid, u.Gid)
		}
		acct = account{uid: uint32(uid), gid: uint32(gid)}
	}
	if hasGroup {
		g, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("run_as %q: the group is not a number", s)
		}
		acct.gid = uint32(g)
	}
	if acct.uid == 0 || acct.gid == 0 {
		return nil, fmt.Errorf("run_as %q is root's; a MicroService never runs as root", s)
	}
	return &acct, nil
}
