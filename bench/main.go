// Command bench measures how fast msm follows load and failures, each figure
// beside its floor measured in the same run, and writes the figures to
// bench/results/latest.json. `make bench` runs it; docs/performance.md reads
// the results.
//
// Every figure runs on the standalone kind against a Temporal dev server of
// bin/temporal started for the run, with real msm worker, node and agent
// processes and the demo MicroService (bin/msm, bin/demo).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/tcpproxy"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/workflows"
)

// Figure is one measured figure: its samples' percentiles, and the figure it
// is compared with.
type Figure struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Runs     int           `json:"runs"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	Target   time.Duration `json:"target_ns,omitempty"`
	Baseline string        `json:"baseline,omitempty"` // the ID of the figure it is set beside
	// Value and Unit hold a figure that is not a duration (MiB, events).
	Value float64 `json:"value,omitempty"`
	Unit  string  `json:"unit,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// Results is what latest.json holds.
type Results struct {
	Started time.Time `json:"started"`
	Machine string    `json:"machine"`
	Eager   bool      `json:"eager_activities"`
	Figures []Figure  `json:"figures"`
}

func main() {
	runs := flag.Int("runs", 20, "samples per figure")
	out := flag.String("out", "bench/results/latest.json", "where to write the results")
	bin := flag.String("bin", "bin", "directory holding msm, demo and temporal")
	only := flag.String("only", "", "comma-separated figure IDs to run (default all)")
	eager := flag.Bool("eager", true, "run the dev server with system.enableActivityEagerExecution=true")
	trace := flag.Bool("trace", false, "print the histories of the operations measured, with event times, on stderr")
	flag.IntVar(&simContainers, "sim-containers", simContainers, "instances B9 provisions on the simulated kind")
	cpuprofile := flag.String("cpuprofile", "", "write the bench process's CPU profile (its in-process workers: B9's Manager worker and simulated fleet) to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -cpuprofile:", err)
			os.Exit(2)
		}
	}
	var tw io.Writer
	if *trace {
		tw = os.Stderr
	}
	err := run(*runs, *out, *bin, *only, *eager, tw)
	pprof.StopCPUProfile() // nothing when not started
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(runs int, out, bin, only string, eager bool, trace io.Writer) (err error) {
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	for _, b := range []string{"msm", "demo", "temporal"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s/%s is missing; run make build bin/temporal first", bin, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	work, err := os.MkdirTemp("", "msm-bench-")
	if err != nil {
		return err
	}
	defer func() { // kept when the run failed: the error names the logs in it
		if err == nil {
			os.RemoveAll(work)
		}
	}()
	logf, err := os.Create(filepath.Join(work, "temporal.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	opts := devserver.Options{Binary: filepath.Join(bin, "temporal"), SearchAttributes: workflows.SearchAttributeTypes, Output: logf}
	if eager {
		opts.ExtraArgs = []string{"--dynamic-config-value", "system.enableActivityEagerExecution=true"}
	}

	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("starting the dev server, %w", err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: quiet{}})
	if err != nil {
		return err
	}
	defer c.Close()

	env := &benchEnv{ctx: ctx, c: c, bin: bin, work: work, address: srv.Address(), runs: runs, trace: trace}
	// The docker kind's nodes and containers reach the dev server on
	// Docker's default bridge, through a proxy.
	if bridge := bridgeIP(); bridge != "" {
		p, err := tcpproxy.Start(bridge, srv.Address())
		if err != nil {
			return fmt.Errorf("proxying the dev server onto %s, %w", bridge, err)
		}
		defer p.Close()
		env.bridgeAddress = p.Addr()
	}
	res := Results{Started: time.Now().UTC(), Machine: machine(), Eager: eager}
	want := func(id string) bool { return only == "" || slices.Contains(strings.Split(only, ","), id) }
	for _, f := range figures {
		if !want(f.id) {
			continue
		}
		fmt.Fprintf(os.Stderr, "%s: %s (%d runs)…\n", f.id, f.name, runs)
		got, err := f.run(env)
		if err != nil {
			return fmt.Errorf("%s, %w", f.id, err)
		}
		res.Figures = append(res.Figures, got...)
	}
	printTable(os.Stdout, res)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// figure is one entry of the run: it may yield several figures (one and
// its baseline).
type figure struct {
	id, name string
	run      func(*benchEnv) ([]Figure, error)
}

var figures = []figure{
	{"B0", "raw start of the demo MicroService: exec → first healthy answer", baselineStart},
	{"B1", "warm scale-out: overload report → new instance healthy, through a waiting container", warmScaleOut},
	{"B2", "scale-out with a new container process on an existing server", coldScaleOut},
	{"B3", "MicroService crash (kill -9) → back at desired replicas", crashRecovery},
	{"B4", "server loss → back at desired replicas", serverLoss},
	{"B5", "provisioning 0 → 200 containers on 4 servers, then the idle worker's footprint (B7)", provisionAndIdle},
	{"B8", "one decision of the Manager at 1k, 10k and 50k containers (in process)", decisionCost},
	{"B9", "the simulated kind at fleet scale: provisioning, overload, lost servers, crashes (in process, real dev server)", fleetScale},
	{"B10", "20 services extended at once beside one alone: operations side by side", sideBySide},
	{"B11", "memory per container at 200 containers on 4 servers: agents, and the MicroServices beside them", memoryPerContainer},
	{"D", "B1–B3 on the docker kind (this machine's engine, the msm image)", dockerFigures},
	{"S", "Docker Swarm on this engine and the msm image: scale N+1 and a killed task (beside B1 and B3)", swarmFigures},
}

// benchEnv is what every figure shares: the dev server and the binaries.
type benchEnv struct {
	ctx     context.Context
	c       client.Client
	bin     string
	work    string
	address string
	runs    int
	trace   io.Writer // where the histories of the operations measured are printed, with event times (-trace)
	n       int       // clusters made so far, for their names and port blocks
	// bridgeAddress is where containers reach the dev server: a proxy on
	// Docker's default bridge; "" without one.
	bridgeAddress string
	image         string // the msm image, once built
}

// msmImage builds the msm image (msm and the demo, FROM scratch) once per
// run and returns its tag.
func (e *benchEnv) msmImage() (string, error) {
	if e.image != "" {
		return e.image, nil
	}
	image, err := testimage.Build()
	if err != nil {
		return "", fmt.Errorf("building the msm image, %w", err)
	}
	e.image = image
	return image, nil
}

// bridgeIP is the IPv4 address of Docker's default bridge (docker0), or "".
func bridgeIP() string {
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		return ""
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return ""
}

// summarize turns samples into a figure.
func summarize(id, name string, samples []time.Duration) Figure {
	s := slices.Clone(samples)
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := int(p*float64(len(s)) + 0.5)
		return s[min(max(i-1, 0), len(s)-1)]
	}
	return Figure{ID: id, Name: name, Runs: len(s), P50: pct(0.50), P95: pct(0.95)}
}

// printTable writes the figures, each with its ratio to its baseline.
func printTable(w io.Writer, r Results) {
	by := map[string]Figure{}
	for _, f := range r.Figures {
		by[f.ID] = f
	}
	fmt.Fprintf(w, "\nmsm benchmarks, %s, %s, eager activities %t\n\n", r.Started.Format(time.RFC3339), r.Machine, r.Eager)
	fmt.Fprintf(w, "%-4s %-78s %5s %10s %10s %10s %s\n", "id", "figure", "runs", "p50", "p95", "target", "vs baseline (p50)")
	for _, f := range r.Figures {
		target, ratio := "", ""
		if f.Target > 0 {
			target = ms(f.Target)
		}
		if b, ok := by[f.Baseline]; ok && b.P50 > 0 {
			ratio = fmt.Sprintf("%.1f× %s", float64(f.P50)/float64(b.P50), b.ID)
		}
		p50, p95 := ms(f.P50), ms(f.P95)
		if f.Unit != "" {
			p50, p95 = fmt.Sprintf("%.1f %s", f.Value, f.Unit), ""
		}
		fmt.Fprintf(w, "%-4s %-78s %5d %10s %10s %10s %s\n", f.ID, f.Name, f.Runs, p50, p95, target, ratio)
		if f.Note != "" {
			fmt.Fprintf(w, "     %s\n", f.Note)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// machine describes where the figures were measured.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// quiet is the SDK's logger, silenced.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

var errTimeout = errors.New("timed out")
