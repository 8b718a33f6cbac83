package node

import (
	"context"
	"os"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// clockTicks is the kernel's USER_HZ, the unit of CPU times in /proc.
const clockTicks = 100

// groupTicks sums the CPU time (user + system, in ticks) of the running
// processes of a process group: a container's agent and its MicroService.
func groupTicks(pgid int) uint64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := strconv.Itoa(pgid)
	var sum uint64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := stat(pid)
		if err != nil || f[2] != want { // field 5: process group
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64) // field 14: utime
		s, _ := strconv.ParseUint(f[12], 10, 64) // field 15: stime
		sum += u + s
	}
	return sum
}

// usage measures the server and its containers, report after report.
type usage struct {
	n      *Node
	server ServerMeter
	last   map[string]uint64 // container -> group ticks at the last report
	at     time.Time
}

// ServerMeter measures the whole server for usage reports.
type ServerMeter interface {
	// Measure returns CPU use since the last call (percent of all cores)
	// and memory in use (percent).
	Measure() (cpu, memory float64, err error)
}

// report builds one usage report: each container's CPU use since the
// last report, in percent of one core, and the server's.
func (u *usage) report(now time.Time) (workflows.UsageSignal, error) {
	recs, err := u.n.records()
	if err != nil {
		return workflows.UsageSignal{}, err
	}
	secs := now.Sub(u.at).Seconds()
	next := map[string]uint64{}
	sig := workflows.UsageSignal{Server: u.n.cfg.Server, Containers: []workflows.ContainerUsage{}}
	for _, r := range recs {
		if !alive(r.PID, r.Start) {
			continue
		}
		ticks := groupTicks(r.PID)
		next[r.Container] = ticks
		if prev, ok := u.last[r.Container]; ok && secs > 0 && ticks >= prev {
			cpu := int(float64(ticks-prev) / clockTicks / secs * 100)
			sig.Containers = append(sig.Containers, workflows.ContainerUsage{Container: r.Container, CPU: cpu})
		}
	}
	u.last, u.at = next, now
	if u.server != nil {
		cpu, mem, err := u.server.Measure()
		if err == nil {
			sig.CPU, sig.Memory = int(cpu), int(mem)
		}
	}
	return sig, nil
}

// reportUsage sends the Manager a usage summary every `every` until ctx
// ends. Samples stay here: one signal per server and period reaches the
// Manager's history, whatever the number of containers.
func (n *Node) reportUsage(ctx context.Context, c client.Client, every time.Duration, meter ServerMeter) {
	u := &usage{n: n, server: meter, at: time.Now()}
	if _, err := u.report(time.Now()); err != nil { // the baseline
		n.cfg.Log.Warn("measuring usage", "error", err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			sig, err := u.report(now)
			if err != nil {
				n.cfg.Log.Warn("measuring usage", "error", err)
				continue
			}
			sig.Auth = agentapi.Sign(n.cfg.Key, sig.Fields())
			if err := c.SignalWorkflow(ctx, workflows.ManagerID(n.cfg.Manager), "", workflows.SignalUsage, sig); err != nil && ctx.Err() == nil {
				n.cfg.Log.Warn("reporting usage", "error", err)
			}
		}
	}
}
