package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/workflows"
)

// memorySettle is how long the containers idle before their memory is
// read: past the start's garbage and a few health checks and load samples,
// as a container spends most of its life.
const memorySettle = 30 * time.Second

// memoryPerContainer (B11) provisions 200 containers on 4 servers, as B5
// does, lets them idle, and reads the memory of every container agent and,
// apart, of every MicroService (the demo): what msm costs per container
// beside what it supervises.
func memoryPerContainer(e *benchEnv) ([]Figure, error) {
	const n, servers = 200, 4
	cl, err := e.newCluster(servers, n/servers, "  warm_pool: 0\n", fmt.Sprintf(bulkService, filepath.Join(e.bin, "demo"), n, n))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, _, err := cl.WaitFor(fmt.Sprintf("%d healthy instances", n), 10*time.Minute, func(st workflows.Status) bool {
		return len(healthy(st, "web")) == n
	}); err != nil {
		return nil, err
	}
	time.Sleep(memorySettle)
	var agents, services memorySum
	for _, p := range clustertest.Processes(cl.Manager) {
		args := p.Args
		var sum *memorySum
		switch name := filepath.Base(args[0]); {
		case name == "msm-agent":
			sum, agents.command = &agents, args[0]
		case name == "msm" && len(args) > 1 && args[1] == "agent":
			sum, agents.command = &agents, args[0]+" agent"
		case name == "demo":
			sum = &services
		default:
			continue // the worker and the nodes
		}
		if err := sum.add(p.PID); err != nil {
			return nil, err
		}
	}
	if agents.n != n || services.n != n {
		return nil, fmt.Errorf("%d agents and %d MicroServices found, not %d of each (logs in %s)", agents.n, services.n, n, cl.Dir)
	}
	return []Figure{
		{ID: "B11", Name: fmt.Sprintf("container agent RSS per container, %d containers on %d servers (target ≤ 10 MiB)", n, servers), Runs: 1,
			Value: agents.perProcess(agents.rss), Unit: "MiB",
			Note: fmt.Sprintf("%s; PSS %.1f MiB, anonymous %.1f MiB (the rest of RSS is the binary's pages, which every agent shares); CPU %.0f ms per agent from exec to %s idle at %d healthy",
				agents.command, agents.perProcess(agents.pss), agents.perProcess(agents.anon), agents.cpuPerProcess(), memorySettle, n)},
		{ID: "B11m", Name: "the MicroService it supervises (demo), RSS per MicroService", Runs: 1,
			Value: services.perProcess(services.rss), Unit: "MiB",
			Note: fmt.Sprintf("PSS %.1f MiB, anonymous %.1f MiB", services.perProcess(services.pss), services.perProcess(services.anon))},
	}, nil
}

// memorySum adds up the memory and CPU of a kind of process.
type memorySum struct {
	n              int
	rss, pss, anon uint64 // bytes
	cpu            uint64 // clock ticks
	command        string // the command that names the kind (agents)
}

// add reads a process's Rss, Pss (which divides each page among the
// processes mapping it, such as its binary's) and Anonymous (its own
// memory) from smaps_rollup, and its CPU time.
func (s *memorySum) add(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return err
	}
	sums := map[string]*uint64{"Rss": &s.rss, "Pss": &s.pss, "Anonymous": &s.anon}
	for line := range strings.Lines(string(b)) {
		key, v, _ := strings.Cut(line, ":")
		into := sums[key]
		if into == nil {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return fmt.Errorf("reading %s of process %d, %w", key, pid, err)
		}
		*into += kb << 10
	}
	ticks, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	s.cpu += ticks
	s.n++
	return nil
}

// perProcess is bytes per process of the sum, in MiB.
func (s *memorySum) perProcess(bytes uint64) float64 {
	return float64(bytes) / float64(s.n) / (1 << 20)
}

// cpuPerProcess is CPU time per process, in milliseconds.
func (s *memorySum) cpuPerProcess() float64 {
	return float64(s.cpu) * 10 / float64(s.n)
}
