package clustertest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Process is a process of this host whose environment names a Manager.
type Process struct {
	PID int
	// Container and Server are its MSM_CONTAINER and MSM_SERVER: a
	// container's agent or MicroService has both, a worker or node
	// neither.
	Container, Server string
	// Agent: the container agent itself (msm-agent or `msm agent`), not
	// its MicroService.
	Agent bool
	Args  []string
}

// Processes lists the live processes of manager, read from /proc (one that
// exited and is not yet reaped is passed over).
func Processes(manager string) []Process {
	var out []Process
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !slices.Contains(vars, "MSM_MANAGER="+manager) {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		p := Process{PID: pid}
		for _, v := range vars {
			if s, ok := strings.CutPrefix(v, "MSM_CONTAINER="); ok {
				p.Container = s
			}
			if s, ok := strings.CutPrefix(v, "MSM_SERVER="); ok {
				p.Server = s
			}
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.Args = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		p.Agent = p.Container != "" && (filepath.Base(p.Args[0]) == "msm-agent" || len(p.Args) > 1 && p.Args[1] == "agent")
		out = append(out, p)
	}
	return out
}
