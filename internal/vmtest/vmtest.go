// Package vmtest runs a test binary as the only program of a Linux virtual
// machine: for what a test cannot do to the machine it runs on, as a
// cgroup v2 hierarchy with the memory, pids and cpu controllers on a host
// whose own hierarchy is cgroup v1. The VM is qemu (software emulation: it
// needs no /dev/kvm) booting the host's kernel image (Debian's
// linux-image-amd64) from an initramfs this package writes: a static
// busybox for the init script, and the binary. `make test` installs
// qemu-system-x86, linux-image-amd64 and busybox-static when missing;
// without them the tests that need a VM are skipped.
package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tools are what Run needs on the host.
type Tools struct {
	Qemu, Kernel, Busybox string
}

// Find locates the tools, or says what is missing and how to get it.
func Find() (Tools, error) {
	var t Tools
	var err error
	if t.Qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		return t, errors.New("no qemu-system-x86_64: apt-get install qemu-system-x86")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		return t, errors.New("no kernel image in /boot: apt-get install linux-image-amd64")
	}
	sort.Strings(kernels)
	t.Kernel = kernels[len(kernels)-1]
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return t, errors.New("no /bin/busybox: apt-get install busybox-static")
	}
	t.Busybox = "/bin/busybox"
	return t, nil
}

// Options is one run.
type Options struct {
	// Binary is the program the VM runs (static: the VM has no libraries),
	// with Args; Files are more host files the VM holds, by their path in
	// the VM.
	Binary string
	Args   []string
	Files  map[string]string
	// Env is added to the program's environment.
	Env []string
	// Memory is the VM's memory in MiB (default 1024); Timeout bounds the
	// whole run (default 10 minutes).
	Memory  int
	Timeout time.Duration
}

// exitLine is how the init script reports the program's exit status.
var exitLine = regexp.MustCompile(`(?m)^vmtest: exit (\d+)\s*$`)

// Run boots a VM whose init mounts /proc, /sys, /dev, a tmpfs /tmp and
// the cgroup v2 hierarchy at /sys/fs/cgroup, runs the program as root,
// prints its exit status and powers off. It returns the VM's console
// output and the program's exit status.
func Run(ctx context.Context, t Tools, o Options) (string, int, error) {
	if o.Memory == 0 {
		o.Memory = 1024
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	dir, err := os.MkdirTemp("", "msm-vmtest-")
	if err != nil {
		return "", -1, err
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initrd.gz")
	if err := writeInitramfs(initrd, t.Busybox, o); err != nil {
		return "", -1, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Qemu, "-machine", "accel=tcg", "-cpu", "max", "-smp", "2",
		"-m", strconv.Itoa(o.Memory), "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", t.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 rdinit=/init")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	m := exitLine.FindStringSubmatch(text)
	if m == nil {
		if ctx.Err() != nil {
			return text, -1, fmt.Errorf("the VM did not finish within %v", o.Timeout)
		}
		return text, -1, fmt.Errorf("the VM ended without the program's exit status (qemu: %v)", runErr)
	}
	code, _ := strconv.Atoi(m[1])
	return text, code, nil
}

// initScript is the VM's /init.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 none /sys/fs/cgroup
ip link set lo up
cd /tmp
env %s /vmtest/program %s
echo "vmtest: exit $?"
poweroff -f
`

// writeInitramfs writes the VM's gzipped newc initramfs to path.
func writeInitramfs(path, busybox string, o Options) error {
	var env, args []string
	for _, e := range o.Env {
		env = append(env, shellQuote(e))
	}
	for _, a := range o.Args {
		args = append(args, shellQuote(a))
	}
	w := &cpio{}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "vmtest", "etc"} {
		w.dir(d)
	}
	w.file("init", 0o755, []byte(fmt.Sprintf(initScript, strings.Join(env, " "), strings.Join(args, " "))))
	w.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	w.file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	files := map[string]string{"/bin/busybox": busybox, "/vmtest/program": o.Binary}
	for in, host := range o.Files {
		files[in] = host
	}
	names := make([]string, 0, len(files))
	for in := range files {
		names = append(names, in)
	}
	sort.Strings(names)
	for _, in := range names {
		b, err := os.ReadFile(files[in])
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(in, "/")
		w.parents(rel)
		w.file(rel, 0o755, b)
	}
	w.trailer()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(f)
	if _, err := gz.Write(w.buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := gz.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// cpio writes a newc archive.
type cpio struct {
	buf  bytes.Buffer
	ino  int
	dirs map[string]bool
}

func (c *cpio) has(dir string) bool { return c.dirs[dir] }

func (c *cpio) parents(rel string) {
	var missing []string
	for d := filepath.Dir(rel); d != "." && !c.has(d); d = filepath.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		c.dir(missing[i])
	}
}

func (c *cpio) dir(name string) {
	if c.dirs == nil {
		c.dirs = map[string]bool{}
	}
	c.dirs[name] = true
	c.entry(name, 0o040755, nil)
}

func (c *cpio) file(name string, perm int, data []byte) { c.entry(name, 0o100000|perm, data) }

func (c *cpio) trailer() { c.entry("TRAILER!!!", 0, nil) }

func (c *cpio) entry(name string, mode int, data []byte) {
	c.ino++
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	fmt.Fprintf(&c.buf, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *cpio) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

// Tests builds the tests of the Go package in dir (static: CGO_ENABLED=0)
// and runs those run matches as the program of a VM, with files and env
// added; t fails unless the program passed and each test of want passed
// there (so none was skipped). It skips t when the host has no VM (Find).
func Tests(t testing.TB, dir, run string, want []string, files map[string]string, env []string) {
	t.Helper()
	tools, err := Find()
	if err != nil {
		t.Skipf("no VM here (%v); make test installs what it needs", err)
	}
	bin := filepath.Join(t.TempDir(), "package.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the tests of %s: %v\n%s", dir, err, out)
	}
	began := time.Now()
	console, code, err := Run(context.Background(), tools, Options{
		Binary: bin, Args: []string{"-test.v", "-test.run", run}, Files: files, Env: env,
	})
	t.Logf("the VM (%v):\n%s", time.Since(began).Round(time.Millisecond), console)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("the tests in the VM exited %d", code)
	}
	for _, name := range want {
		if !strings.Contains(console, "--- PASS: "+name) {
			t.Errorf("%s did not run, or did not pass, in the VM", name)
		}
	}
}
