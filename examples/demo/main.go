// Command demo is the example MicroService that msm provisions in tests and
// demos: a small HTTP server with a health check, an identity endpoint and a
// CPU-burning endpoint that makes load (and so scaling) easy to produce.
//
// It uses the standard library only, so it builds anywhere msm does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxWork caps /work so one request cannot pin a CPU for long.
	maxWork = 10000 * time.Millisecond
	// shutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM before the process exits anyway.
	shutdownTimeout = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // usage is already printed
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// config is everything the flags and the environment decide.
type config struct {
	Port         int
	Name         string
	StartupDelay time.Duration
	Listen       string
}

// parseConfig maps flags onto config; the environment (PORT, MSM_SERVICE)
// gives the defaults, because that is how the msm agent hands a service its
// leased port.
// Usage and flag errors go to usage.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	c := config{Port: 8080, Name: "demo", Listen: "127.0.0.1"}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("parsing PORT %q, %w", v, err)
		}
		c.Port = p
	}
	if v := getenv("MSM_SERVICE"); v != "" {
		c.Name = v
	}

	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.IntVar(&c.Port, "port", c.Port, "TCP port to listen on, 0 picks a free one; $PORT sets the default")
	fs.StringVar(&c.Name, "name", c.Name, "service name reported by /; $MSM_SERVICE sets the default")
	fs.DurationVar(&c.StartupDelay, "startup-delay", 0, "sleep this long before listening")
	fs.StringVar(&c.Listen, "listen", c.Listen, "host or IP to listen on")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("port %d out of range", c.Port)
	}
	if c.StartupDelay < 0 {
		return c, fmt.Errorf("negative startup delay %s", c.StartupDelay)
	}
	return c, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}

	if c.StartupDelay > 0 {
		t := time.NewTimer(c.StartupDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(c.Listen, strconv.Itoa(c.Port)))
	if err != nil {
		return fmt.Errorf("listening, %w", err)
	}
	// With --port 0 the kernel picks the port; report the real one.
	port := ln.Addr().(*net.TCPAddr).Port
	hostname, _ := os.Hostname()
	srv := &http.Server{
		Handler:           newHandler(identity{Service: c.Name, Port: port, PID: os.Getpid(), Hostname: hostname}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(stdout, "demo %s listening on %s\n", c.Name, ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving, %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down, %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving, %w", err)
	}
	return nil
}

// identity is the body of GET /: enough for a test to tell which process,
// on which port, answered.
type identity struct {
	Service  string `json:"service"`
	Port     int    `json:"port"`
	PID      int    `json:"pid"`
	Hostname string `json:"hostname"`
}

// workResult is the body of GET /work.
type workResult struct {
	Service     string  `json:"service"`
	RequestedMS int     `json:"requested_ms"`
	ElapsedMS   float64 `json:"elapsed_ms"`
}

// metrics is what GET /metrics answers: the requests in flight now (the
// msm agent reads it as a measure of load, beside CPU) and served so far.
type metrics struct {
	InFlight int64 `json:"in_flight"`
	Requests int64 `json:"requests"`
}

func newHandler(id identity) http.Handler {
	var inFlight, requests atomic.Int64
	// counted keeps /metrics true for the handlers that do work.
	counted := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			requests.Add(1)
			h(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, metrics{InFlight: inFlight.Load(), Requests: requests.Load()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, id)
	})
	// /sleep?ms=N holds the request N ms without using CPU: load that only
	// the in-flight count shows.
	mux.HandleFunc("GET /sleep", counted(func(w http.ResponseWriter, r *http.Request) {
		ms, err := parseWorkMS(r.URL.Query().Get("ms"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		writeJSON(w, workResult{Service: id.Service, RequestedMS: ms})
	}))
	mux.HandleFunc("GET /work", counted(func(w http.ResponseWriter, r *http.Request) {
		ms, err := parseWorkMS(r.URL.Query().Get("ms"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		elapsed := burn(r.Context(), time.Duration(ms)*time.Millisecond)
		writeJSON(w, workResult{
			Service:     id.Service,
			RequestedMS: ms,
			ElapsedMS:   float64(elapsed) / float64(time.Millisecond),
		})
	}))
	return mux
}

// parseWorkMS reads the ms parameter of /work, capped at maxWork.
func parseWorkMS(v string) (int, error) {
	if v == "" {
		return 0, errors.New("missing query parameter ms (milliseconds of CPU work)")
	}
	ms, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("bad ms %q: want a whole number of milliseconds", v)
	}
	if ms < 0 {
		return 0, fmt.Errorf("bad ms %d: must not be negative", ms)
	}
	return min(ms, int(maxWork/time.Millisecond)), nil
}

// burn keeps one CPU busy for d, the point being measurable load, and stops
// early if the client goes away.
func burn(ctx context.Context, d time.Duration) time.Duration {
	start := time.Now()
	x := uint64(1)
	for time.Since(start) < d {
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if ctx.Err() != nil {
			break
		}
	}
	sink.Store(x)
	return time.Since(start)
}

// sink keeps the compiler from deleting burn's loop; atomic because
// requests burn concurrently.
var sink atomic.Uint64

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
