// Package cgroup runs processes in cgroups of their own on a cgroup v2
// hierarchy: created with the controllers msm uses enabled from the root
// down, held to limits the kernel enforces (memory.max, pids.max, cpu.max),
// read back (the events of a limit reached) and killed as a whole
// (cgroup.kill), so that no process of it escapes: not a child in a session
// of its own, not a fork bomb. Nodes and agents use it where the host has
// cgroup v2 and they run as root; elsewhere they confine with rlimits.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Root is where the host's cgroup v2 hierarchy is mounted, when it has one.
const Root = "/sys/fs/cgroup"

// Controllers are the controllers msm enables for the cgroups it makes,
// those of them the hierarchy offers.
var Controllers = []string{"cpu", "memory", "pids"}

// cgroup2Magic is CGROUP2_SUPER_MAGIC, the f_type statfs gives a cgroup v2
// mount.
const cgroup2Magic = 0x63677270

// V2 reports whether dir is (in) a cgroup v2 hierarchy.
func V2(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == cgroup2Magic
}

// Group is one cgroup, by its directory.
type Group struct{ Path string }

// Make creates the cgroup rel under root (a cgroup v2 directory) and its
// missing parents, enabling in root and every cgroup on the way the
// Controllers the hierarchy offers there, so that rel's children can be
// limited. Every cgroup on the way must hold no process (the hierarchy's
// rule: a cgroup with controllers enabled for its children holds none
// itself), root excepted when it is the hierarchy's root. It is
// idempotent.
func Make(root, rel string) (Group, error) {
	if !V2(root) {
		return Group{}, fmt.Errorf("%s is not a cgroup v2 hierarchy", root)
	}
	rel = filepath.Clean("/" + rel)
	dir := root
	if err := enable(dir); err != nil {
		return Group{}, err
	}
	parts := strings.Split(strings.TrimPrefix(rel, "/"), "/")
	for i, p := range parts {
		dir = filepath.Join(dir, p)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return Group{}, fmt.Errorf("making cgroup %s, %w", dir, err)
		}
		if i < len(parts)-1 {
			if err := enable(dir); err != nil {
				return Group{}, err
			}
		}
	}
	return Group{Path: dir}, nil
}

// enable turns on, for dir's children, the Controllers dir offers and has
// not turned on yet.
func enable(dir string) error {
	offered, err := words(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	on, err := words(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	var add []string
	for _, c := range Controllers {
		if slices.Contains(offered, c) && !slices.Contains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0o644); err != nil {
		return fmt.Errorf("enabling %s in cgroup %s (it must hold no process), %w", strings.Join(add, " "), dir, err)
	}
	return nil
}

// Child is the cgroup name under g, made if missing; g must hold no
// process. Controllers g's children get are enabled in g.
func (g Group) Child(name string) (Group, error) {
	if err := enable(g.Path); err != nil {
		return Group{}, err
	}
	dir := filepath.Join(g.Path, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return Group{}, fmt.Errorf("making cgroup %s, %w", dir, err)
	}
	return Group{Path: dir}, nil
}

// Limits bound a cgroup: zero fields are unbounded.
type Limits struct {
	Memory int64 // bytes of memory.max; swap is refused with it
	Pids   int   // pids.max: processes and threads
	// CPU is cpu.max in thousandths of a CPU (500: half of one).
	CPU int
}

// cpuPeriod is the cpu.max period, in microseconds: the kernel's default.
const cpuPeriod = 100000

// Set writes l to g. A limit whose controller g does not have (its parent
// does not offer it) is an error naming it.
func (g Group) Set(l Limits) error {
	write := func(file, value string) error {
		if err := os.WriteFile(filepath.Join(g.Path, file), []byte(value), 0o644); err != nil {
			return fmt.Errorf("setting %s of cgroup %s to %s, %w", file, g.Path, value, err)
		}
		return nil
	}
	if l.Memory > 0 {
		if err := write("memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(g.Path, "memory.swap.max")); err == nil {
			if err := write("memory.swap.max", "0"); err != nil {
				return err
			}
		}
	}
	if l.Pids > 0 {
		if err := write("pids.max", strconv.Itoa(l.Pids)); err != nil {
			return err
		}
	}
	if l.CPU > 0 {
		if err := write("cpu.max", fmt.Sprintf("%d %d", int64(l.CPU)*cpuPeriod/1000, cpuPeriod)); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether g has controller c (its interface files are there).
func (g Group) Has(c string) bool {
	on, err := words(filepath.Join(filepath.Dir(g.Path), "cgroup.subtree_control"))
	return err == nil && slices.Contains(on, c)
}

// Open opens g's directory, for SysProcAttr.CgroupFD: a process started
// with it (UseCgroupFD) is in g from its first instruction.
func (g Group) Open() (*os.File, error) {
	f, err := os.Open(g.Path)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s, %w", g.Path, err)
	}
	return f, nil
}

// Procs lists the processes in g and its descendants.
func (g Group) Procs() []int {
	var out []int
	_ = filepath.WalkDir(g.Path, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// Populated reports whether a process is in g or its descendants.
func (g Group) Populated() bool {
	ev, err := g.Events("cgroup.events")
	if err != nil {
		return len(g.Procs()) > 0
	}
	return ev["populated"] != 0
}

// Events reads a flat-keyed file of g ("name value" lines, as
// memory.events, pids.events, cgroup.events and cpu.stat are).
func (g Group) Events(file string) (map[string]int64, error) {
	b, err := os.ReadFile(filepath.Join(g.Path, file))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	return out, nil
}

// Value reads a one-number file of g (memory.current, pids.current).
func (g Group) Value(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(g.Path, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// Kill kills every process in g and its descendants, and waits (up to
// wait) until none is left. With cgroup.kill (Linux 5.14) the kernel kills
// them all at once, a process forking meanwhile included; without it, g
// is frozen, each process killed, and g thawed, until it is empty.
func (g Group) Kill(wait time.Duration) error {
	if _, err := os.Stat(g.Path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	kill := filepath.Join(g.Path, "cgroup.kill")
	if _, err := os.Stat(kill); err == nil {
		if err := os.WriteFile(kill, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("killing cgroup %s, %w", g.Path, err)
		}
	}
	deadline := time.Now().Add(wait)
	for g.Populated() {
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds processes %v after %v", g.Path, g.Procs(), wait)
		}
		freeze := filepath.Join(g.Path, "cgroup.freeze")
		_ = os.WriteFile(freeze, []byte("1"), 0o644)
		for _, pid := range g.Procs() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.WriteFile(freeze, []byte("0"), 0o644)
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Remove kills what is left in g and removes it and its descendants.
func (g Group) Remove() error {
	if err := g.Kill(5 * time.Second); err != nil {
		return err
	}
	var dirs []string
	_ = filepath.WalkDir(g.Path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- { // the deepest first
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("removing cgroup %s, %w", dirs[i], err)
		}
	}
	return nil
}

// words reads the space-separated words of a file.
func words(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s, %w", path, err)
	}
	return strings.Fields(string(b)), nil
}
