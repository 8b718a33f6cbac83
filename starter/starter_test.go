package starter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/msm-project/msm/workflows"
)

// TestSearchAttributeTypesResolve: EnsureSearchAttributes turns each type
// name into an enum; a name that misses would fail registration.
func TestSearchAttributeTypesResolve(t *testing.T) {
	require.NotEmpty(t, workflows.SearchAttributeTypes)
	for name, typ := range workflows.SearchAttributeTypes {
		v, err := enumspb.IndexedValueTypeFromString(typ)
		require.NoError(t, err, name)
		assert.NotEqual(t, enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED, v, name)
	}
}

// closedAddress returns a 127.0.0.1 address where nothing listens: the
// kernel answers a connection attempt with a refusal at once.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// logBuffer collects slog records as JSON; the SDK may log from its own
// goroutines, hence the lock.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var r map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		out = append(out, r)
	}
	return out
}

func newLog() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// retries returns the Warn records of Dial's retry loop.
func retries(t *testing.T, b *logBuffer) []map[string]any {
	var out []map[string]any
	for _, r := range b.records(t) {
		if r["level"] == "WARN" && r["msg"] == "Temporal not reachable yet, retrying" {
			out = append(out, r)
		}
	}
	return out
}

func TestDialUnreachableRetriesForWait(t *testing.T) {
	addr := closedAddress(t)
	logs, log := newLog()
	const wait = time.Second
	began := time.Now()
	c, err := Dial(context.Background(), Options{Address: addr, Namespace: "ns1", Wait: wait, Log: log})
	took := time.Since(began)
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Contains(t, err.Error(), "Temporal is not reachable at "+addr+" (namespace ns1)")
	assert.Contains(t, err.Error(), "TEMPORAL_ADDRESS")
	// It keeps trying for all of Wait, and not much longer.
	assert.GreaterOrEqual(t, took, wait, "gave up before Wait")
	assert.Less(t, took, 15*time.Second, "it stops retrying soon after Wait")
	warns := retries(t, logs)
	assert.GreaterOrEqual(t, len(warns), 2, "expected several attempts, logged at Warn; got %v", logs.records(t))
	for _, w := range warns {
		assert.Equal(t, addr, w["address"])
		assert.Contains(t, w["error"], "connection refused")
	}
}

func TestDialWaitZeroTriesOnce(t *testing.T) {
	addr := closedAddress(t)
	logs, log := newLog()
	began := time.Now()
	_, err := Dial(context.Background(), Options{Address: addr, Log: log})
	require.Error(t, err)
	assert.Less(t, time.Since(began), 10*time.Second)
	assert.Contains(t, err.Error(), "Temporal is not reachable at "+addr+" (namespace default)")
	assert.Empty(t, retries(t, logs))
}

func TestDialStopsWithContext(t *testing.T) {
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		within time.Duration
		// canceled: the error wraps context.Canceled and does not tell
		// the user to start Temporal (they interrupted, nothing is wrong).
		canceled bool
	}{
		{
			name: "cancelled before",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			within:   500 * time.Millisecond,
			canceled: true,
		},
		{
			name: "cancelled while retrying",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			},
			within:   time.Second,
			canceled: true,
		},
		{
			name: "deadline before Wait",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 500*time.Millisecond)
			},
			within: 1500 * time.Millisecond,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedAddress(t)
			_, log := newLog()
			ctx, cancel := tc.ctx()
			defer cancel()
			began := time.Now()
			_, err := Dial(ctx, Options{Address: addr, Wait: time.Minute, Log: log})
			took := time.Since(began)
			require.Error(t, err)
			assert.Less(t, took, 5*tc.within, "bounds a hang, not a speed")
			assert.Contains(t, err.Error(), addr)
			assert.Equal(t, tc.canceled, errors.Is(err, context.Canceled), err.Error())
			if tc.canceled {
				assert.NotContains(t, err.Error(), "make dev")
			} else {
				assert.Contains(t, err.Error(), "Temporal is not reachable at "+addr)
			}
		})
	}
}

func TestConnectionSettings(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o600))
	tests := []struct {
		name      string
		o         Options
		tls, cred bool
		err       string
	}{
		{name: "plain", o: Options{}},
		{name: "tls, system roots", o: Options{TLS: true}, tls: true},
		{name: "an API key implies TLS", o: Options{APIKey: "k"}, tls: true, cred: true},
		{name: "missing CA", o: Options{TLS: true, CA: filepath.Join(dir, "nope.pem")}, err: "reading the Temporal CA bundle"},
		{name: "CA without a certificate", o: Options{TLS: true, CA: bad}, err: "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, creds, err := tc.o.connection()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.tls, cfg != nil)
			assert.Equal(t, tc.cred, creds != nil)
		})
	}
}
