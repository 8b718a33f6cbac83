// Package clicore is the part of the msm command line that every
// Temporal-facing command shares and that the lean container agent
// (cmd/msm-agent) links too: the Temporal settings (flags and environment
// variables), the loggers, interrupts, and the build ID. It must stay
// light: nothing here may pull in the Temporal SDK, a cloud SDK, the Docker
// client or PostgreSQL (cmd/msm-agent's test checks); dialing with the SDK
// is internal/cli's, with internal/wire the agent's.
package clicore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Temporal are the settings every Temporal-facing command takes: where
// Temporal is, how to reach it, and which Manager to work for.
type Temporal struct {
	Address, Namespace, Manager string
	// Verbose logs the Temporal SDK at info level.
	Verbose bool
	// TLS, TLSCA and APIKeyFile reach a Temporal that needs TLS or an API
	// key (the key may also come from TEMPORAL_API_KEY); TLSCert and TLSKey
	// are a client certificate and its key, for a Temporal that requires
	// one (mTLS).
	TLS                                bool
	TLSCA, APIKeyFile, TLSCert, TLSKey string
	// CodecKeyFile holds the keys payloads are encrypted with (a key file
	// as internal/trust reads it); "" leaves payloads in plain JSON.
	CodecKeyFile string
	// LogFormat is how logs are written: LogText (key=value) or LogJSON
	// (one JSON object a line, for a log pipeline; with tracing on, the
	// Manager's and the activities' lines carry TraceID and SpanID).
	LogFormat string
}

// Log formats (--log-format).
const (
	LogText = "text"
	LogJSON = "json"
)

// ErrUsage is returned after a flag error was already printed.
var ErrUsage = errors.New("usage")

// Flags is the flag set of command name (as its usage names it), printing
// to stderr, with t's flags when t is not nil, their defaults read from
// getenv.
func Flags(name string, stderr io.Writer, getenv func(string) string, t *Temporal) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if t != nil {
		or := func(key, def string) string {
			if v := getenv(key); v != "" {
				return v
			}
			return def
		}
		fs.StringVar(&t.Address, "address", or("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend `host:port`")
		fs.StringVar(&t.Namespace, "namespace", or("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
		fs.StringVar(&t.Manager, "manager", or("MSM_MANAGER", "local"), "Manager name")
		fs.BoolVar(&t.Verbose, "v", getenv("MSM_VERBOSE") != "", "log the Temporal SDK at info level")
		fs.BoolVar(&t.TLS, "tls", getenv("TEMPORAL_TLS") == "true", "dial Temporal over TLS (TEMPORAL_TLS=true)")
		fs.StringVar(&t.TLSCA, "tls-ca", getenv("TEMPORAL_TLS_CA_PATH"), "CA bundle `file` to trust for Temporal's TLS (TEMPORAL_TLS_CA_PATH; default the system roots)")
		fs.StringVar(&t.TLSCert, "tls-cert", getenv("TEMPORAL_TLS_CLIENT_CERT_PATH"), "client certificate `file` (PEM) for a Temporal that requires one (TEMPORAL_TLS_CLIENT_CERT_PATH; with --tls-key)")
		fs.StringVar(&t.TLSKey, "tls-key", getenv("TEMPORAL_TLS_CLIENT_KEY_PATH"), "the client certificate's key `file` (PEM) (TEMPORAL_TLS_CLIENT_KEY_PATH)")
		fs.StringVar(&t.APIKeyFile, "api-key-file", getenv("TEMPORAL_API_KEY_FILE"), "`file` holding the Temporal API key (TEMPORAL_API_KEY_FILE; or the key itself in TEMPORAL_API_KEY)")
		fs.StringVar(&t.CodecKeyFile, "codec-key-file", getenv("MSM_CODEC_KEY_FILE"), "encrypt payloads with AES-256-GCM under the keys of this `file` (msm keys new; MSM_CODEC_KEY_FILE): every msm process of a Manager needs the same keys")
		fs.StringVar(&t.LogFormat, "log-format", or("MSM_LOG_FORMAT", LogText), "logs as `text` (key=value) or json, one object a line (MSM_LOG_FORMAT)")
	}
	return fs
}

// CheckLogFormat says what is wrong with t's --log-format, or nil.
func (t *Temporal) CheckLogFormat() error {
	if t.LogFormat != "" && t.LogFormat != LogText && t.LogFormat != LogJSON {
		return fmt.Errorf("--log-format %q is not a format: use text or json", t.LogFormat)
	}
	return nil
}

// Parse parses args into fs: flag.ErrHelp for -h, ErrUsage for an error
// fs already printed.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	return nil
}

// Env passes t's Temporal settings on to a child process (agents).
func (t *Temporal) Env() []string {
	env := []string{"TEMPORAL_ADDRESS=" + t.Address, "TEMPORAL_NAMESPACE=" + t.Namespace}
	if t.TLS {
		env = append(env, "TEMPORAL_TLS=true")
	}
	if t.TLSCA != "" {
		env = append(env, "TEMPORAL_TLS_CA_PATH="+t.TLSCA)
	}
	if t.APIKeyFile != "" {
		env = append(env, "TEMPORAL_API_KEY_FILE="+t.APIKeyFile)
	}
	if t.TLSCert != "" {
		env = append(env, "TEMPORAL_TLS_CLIENT_CERT_PATH="+t.TLSCert, "TEMPORAL_TLS_CLIENT_KEY_PATH="+t.TLSKey)
	}
	if t.Verbose {
		env = append(env, "MSM_VERBOSE=1")
	}
	if t.LogFormat == LogJSON {
		env = append(env, "MSM_LOG_FORMAT="+LogJSON)
	}
	return env
}

// APIKey is the Temporal API key: read from t.APIKeyFile, else
// TEMPORAL_API_KEY; "" when neither is set.
func (t *Temporal) APIKey(getenv func(string) string) (string, error) {
	if t.APIKeyFile == "" {
		return getenv("TEMPORAL_API_KEY"), nil
	}
	b, err := os.ReadFile(t.APIKeyFile)
	if err != nil {
		return "", fmt.Errorf("reading the Temporal API key, %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Logger is a command's own logger, at info level, in the format t says
// (text when t is nil).
func (t *Temporal) Logger(w io.Writer) *slog.Logger {
	return slog.New(t.handler(w, slog.LevelInfo))
}

// SDKLogger is quieter, unless verbose: the SDK logs every poll at info
// level. The Manager's decisions (lines with a DecisionKey attribute,
// from its workflow's logger) are written at info all the same.
func (t *Temporal) SDKLogger(w io.Writer) *slog.Logger {
	if t != nil && t.Verbose {
		return slog.New(t.handler(w, slog.LevelInfo))
	}
	return slog.New(&quiet{Handler: t.handler(w, slog.LevelInfo)})
}

// DecisionKey is the attribute of the Manager's log lines of its decisions.
const DecisionKey = "decision"

// quiet passes warnings and errors, and info lines of decisions.
type quiet struct{ slog.Handler }

func (q *quiet) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return q.Handler.Handle(ctx, r)
	}
	decision := false
	r.Attrs(func(a slog.Attr) bool {
		decision = a.Key == DecisionKey
		return !decision
	})
	if !decision {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q *quiet) WithAttrs(as []slog.Attr) slog.Handler { return &quiet{q.Handler.WithAttrs(as)} }
func (q *quiet) WithGroup(name string) slog.Handler    { return &quiet{q.Handler.WithGroup(name)} }

func (t *Temporal) handler(w io.Writer, level slog.Level) slog.Handler {
	o := &slog.HandlerOptions{Level: level}
	if t != nil && t.LogFormat == LogJSON {
		return slog.NewJSONHandler(w, o)
	}
	return slog.NewTextHandler(w, o)
}

// Interrupted returns a context that ends on SIGINT or SIGTERM.
func Interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
