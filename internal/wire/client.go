// Package wire is the container agent's Temporal client: the few calls of
// Temporal's WorkflowService an agent makes (poll its task queue for
// activity tasks, answer them, heartbeat, signal its Manager), as gRPC over
// HTTP/2 with Go's standard library, each message encoded with protowire.
// It links neither the Temporal Go SDK, nor grpc-go, nor Temporal's
// generated API types: a node runs one agent per container, and with them
// an agent held ~24 MiB resident and took ~70 ms of CPU to start.
//
// What it speaks is the SDKs' contract: payloads encoded as the default
// data converter does (json/plain, binary/null), errors as application
// failures with a type and retryability, heartbeats throttled to 80 % of
// the heartbeat timeout, a cancellation seen in a heartbeat's answer.
package wire

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/msm-project/msm/internal/codec"
)

// source names this client in the failures it reports.
const source = "msm-agent"

// Options says where Temporal is and how to reach it.
type Options struct {
	Address   string // host:port, default 127.0.0.1:7233
	Namespace string // default "default"
	// TLS dials over TLS, trusting CA (a PEM file; "" for the system roots).
	TLS bool
	CA  string
	// APIKey authenticates to Temporal (Temporal Cloud and servers with API
	// keys); it implies TLS.
	APIKey string
	// Cert and Key are PEM files of a client certificate and its key, for
	// a Temporal that requires one (mTLS); they imply TLS.
	Cert, Key string
	// Identity names this worker in the server's records (the Web UI's
	// "identity" of an activity's attempt).
	Identity string
	// Wait is how long Dial keeps retrying an unreachable server.
	Wait time.Duration
	Log  *slog.Logger
	// Codec, when set, encrypts every payload this client sends and
	// decrypts those it receives, as the SDK clients of msm's other
	// processes do with the same keys.
	Codec *codec.Codec
}

// Client calls Temporal's WorkflowService. Safe for concurrent use: calls
// share one HTTP/2 connection.
type Client struct {
	o    Options
	base string
	http *http.Client
}

// Dial checks that Temporal answers at o.Address (its GetSystemInfo call),
// retrying for up to o.Wait, and returns a client for it. A refusal of
// the credentials is not retried.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.Address == "" {
		o.Address = "127.0.0.1:7233"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = strconv.Itoa(os.Getpid()) + "@" + host
	}
	c := &Client{o: o}
	var p http.Protocols
	tr := &http.Transport{
		// A long poll holds its stream for up to a minute: pings find a
		// connection that died under it (a network failure) sooner.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 10 * time.Second},
	}
	cfg, err := TLSConfig(o)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		tr.TLSClientConfig = cfg
		p.SetHTTP2(true)
		c.base = "https://" + o.Address
	} else {
		p.SetUnencryptedHTTP2(true)
		c.base = "http://" + o.Address
	}
	tr.Protocols = &p
	c.http = &http.Client{Transport: tr}

	deadline := time.Now().Add(o.Wait)
	delay := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.call(cctx, "GetSystemInfo", nil)
		cancel()
		if err == nil {
			return c, nil
		}
		left := time.Until(deadline)
		if ctx.Err() != nil || left <= 0 || permanent(err) {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, fmt.Errorf("stopped connecting to Temporal at %s, %w", o.Address, ctx.Err())
			}
			//lint:ignore ST1005 Temporal is a name, and the message is shown as it is.
			return nil, fmt.Errorf("Temporal is not reachable at %s (namespace %s): %w; check TEMPORAL_ADDRESS and its TLS, API key and client certificate settings", o.Address, o.Namespace, err)
		}
		wait := min(delay, left)
		o.Log.Warn("Temporal not reachable yet, retrying", "address", o.Address, "in", wait, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// TLSConfig is the TLS configuration o asks for: nil for a plain
// connection, else TLS 1.2 or later trusting o.CA (the system roots when
// it is ""), presenting o.Cert and o.Key when set. An API key implies TLS.
func TLSConfig(o Options) (*tls.Config, error) {
	if !o.TLS && o.APIKey == "" && o.CA == "" && o.Cert == "" && o.Key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("reading the Temporal CA bundle, %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the Temporal CA bundle %s holds no PEM certificate", o.CA)
		}
		cfg.RootCAs = pool
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key: set --tls-cert and --tls-key (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)")
	}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate for Temporal, %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Close releases the client's connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Signal sends signal name with arg (encoded as JSON) to the running
// workflow workflowID, retrying while Temporal is briefly unavailable.
func (c *Client) Signal(ctx context.Context, workflowID, name string, arg any) error {
	p, err := jsonPayload(arg)
	if err == nil {
		p, err = seal(c.o.Codec, p)
	}
	if err != nil {
		return err
	}
	var req []byte
	req = appendString(req, 1, c.o.Namespace)
	req = appendMessage(req, 2, func(b []byte) []byte { return appendString(b, 1, workflowID) })
	req = appendString(req, 3, name)
	req = appendPayloads(req, 4, p)
	req = appendString(req, 5, c.o.Identity)
	req = appendString(req, 6, requestID())
	return c.retry(ctx, func(ctx context.Context) error {
		_, err := c.call(ctx, "SignalWorkflowExecution", req)
		return err
	})
}

// StatusError is a call that Temporal answered with a gRPC status other
// than OK.
type StatusError struct {
	Method  string
	Code    int // the gRPC status code
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Method, e.Message, codeName(e.Code))
}

// gRPC status codes this client tells apart.
const (
	codeCanceled          = 1
	codeInvalidArgument   = 3
	codeDeadlineExceeded  = 4
	codeNotFound          = 5
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

func codeName(code int) string {
	switch code {
	case codeCanceled:
		return "canceled"
	case codeInvalidArgument:
		return "invalid argument"
	case codeDeadlineExceeded:
		return "deadline exceeded"
	case codeNotFound:
		return "not found"
	case codePermissionDenied:
		return "permission denied"
	case codeResourceExhausted:
		return "resource exhausted"
	case codeUnavailable:
		return "unavailable"
	case codeUnauthenticated:
		return "unauthenticated"
	}
	return "gRPC status " + strconv.Itoa(code)
}

// hasCode reports whether err is a StatusError with code.
func hasCode(err error, code int) bool {
	var s *StatusError
	return errors.As(err, &s) && s.Code == code
}

// permanent reports whether retrying a call cannot help: its credentials
// or its request were refused.
func permanent(err error) bool {
	return hasCode(err, codeUnauthenticated) || hasCode(err, codePermissionDenied) || hasCode(err, codeInvalidArgument)
}

// transient reports whether a call may succeed if made again: Temporal or
// the connection to it was briefly away or busy.
func transient(err error) bool {
	var s *StatusError
	if !errors.As(err, &s) {
		return true // a transport error: no answer at all
	}
	return s.Code == codeUnavailable || s.Code == codeResourceExhausted || s.Code == codeDeadlineExceeded
}

// retry runs call until it succeeds, fails for good, or ctx ends; each
// attempt gets up to 10 s.
func (c *Client) retry(ctx context.Context, call func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay + rand.N(delay/2)):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// call makes one unary gRPC call of the WorkflowService: req is the
// encoded request message, and the encoded response is returned. The
// call's deadline is ctx's.
func (c *Client) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	body := make([]byte, 5+len(req))
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	copy(body[5:], req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/temporal.api.workflowservice.v1.WorkflowService/"+method, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("content-type", "application/grpc")
	r.Header.Set("te", "trailers")
	r.Header.Set("temporal-namespace", c.o.Namespace)
	if d, ok := ctx.Deadline(); ok {
		r.Header.Set("grpc-timeout", strconv.FormatInt(max(time.Until(d).Milliseconds(), 1), 10)+"m")
	}
	if c.o.APIKey != "" {
		r.Header.Set("authorization", "Bearer "+c.o.APIKey)
	}
	resp, err := c.http.Do(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Method: method, Code: codeUnavailable, Message: "HTTP " + resp.Status}
	}
	// A frame: a compressed flag (never set here: no grpc-encoding is
	// offered), a 4-byte length, the message.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer, %w", method, err)
	}
	status := resp.Trailer.Get("grpc-status")
	msg := resp.Trailer.Get("grpc-message")
	if status == "" { // a "trailers-only" answer: the status in the headers
		status, msg = resp.Header.Get("grpc-status"), resp.Header.Get("grpc-message")
	}
	if status != "0" {
		code, err := strconv.Atoi(status)
		if err != nil {
			code = codeUnavailable
		}
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m
		}
		return nil, &StatusError{Method: method, Code: code, Message: msg}
	}
	if len(raw) < 5 || raw[0] != 0 || int(binary.BigEndian.Uint32(raw[1:5])) != len(raw)-5 {
		return nil, fmt.Errorf("%s: the answer is not one uncompressed gRPC message (%d bytes)", method, len(raw))
	}
	return raw[5:], nil
}

// requestID is a fresh request ID (a version 4 UUID's form): the server
// drops a signal it already took under the same ID.
func requestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}
