package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/traces"
)

// Handler runs one activity task: input holds the task's arguments, and
// the result is its return value (nil for an activity that returns only
// an error).
type Handler func(ctx context.Context, input []Payload) (*Payload, error)

// Activity is a Handler for fn, whose one argument and result are encoded
// as JSON (the SDKs' default data converter).
func Activity[I, O any](fn func(context.Context, I) (O, error)) Handler {
	return func(ctx context.Context, input []Payload) (*Payload, error) {
		var in I
		if len(input) > 0 {
			if err := input[0].decode(&in); err != nil {
				return nil, NonRetryable(fmt.Sprintf("decoding the argument, %v", err), "BadArgument", nil)
			}
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		p, err := jsonPayload(out)
		return &p, err
	}
}

// ActivityNoResult is a Handler for fn, whose one argument is encoded as
// JSON and which returns only an error.
func ActivityNoResult[I any](fn func(context.Context, I) error) Handler {
	return Activity(func(ctx context.Context, in I) (any, error) { return nil, fn(ctx, in) })
}

// Error is an activity's failure as the workflow sees it: an application
// error of Type (which a workflow's retry policy may name as not to
// retry), retryable unless NonRetryable.
type Error struct {
	Message      string
	Type         string
	NonRetryable bool
	Cause        error
}

func (e *Error) Error() string {
	if e.Cause != nil && e.Message == "" {
		return e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// NonRetryable is an error the workflow's retry policy does not retry: as
// the SDK's temporal.NewNonRetryableApplicationError.
func NonRetryable(msg, typ string, cause error) error {
	return &Error{Message: msg, Type: typ, NonRetryable: true, Cause: cause}
}

// Worker runs the activity tasks of one task queue with the handlers
// registered on it.
type Worker struct {
	c        *Client
	queue    string
	handlers map[string]Handler
	// Parallel bounds the tasks run at once (default 16).
	Parallel int
	// Traces, when set, gets a span of each task run, the child of the
	// span in its header (the workflow's, through the SDK's tracing
	// interceptor).
	Traces *traces.Exporter
}

// NewWorker is a worker for queue; register its handlers, then Run it.
func NewWorker(c *Client, queue string) *Worker {
	return &Worker{c: c, queue: queue, handlers: map[string]Handler{}, Parallel: 16}
}

// Register serves activity type name with h. Not safe once Run started.
func (w *Worker) Register(name string, h Handler) { w.handlers[name] = h }

// pollTimeout bounds one long poll: the server answers an empty poll
// after a minute.
const pollTimeout = 70 * time.Second

// Run polls the queue and runs each task until ctx ends; then it cancels
// the tasks still running, waits for them to answer, and returns nil. It
// returns an error only when the server refuses the poll for good (the
// namespace is unknown, the credentials are refused).
func (w *Worker) Run(ctx context.Context) error {
	slots := make(chan struct{}, max(w.Parallel, 1))
	var running sync.WaitGroup
	defer running.Wait()
	delay := 100 * time.Millisecond
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		t, err := w.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			<-slots
			if permanent(err) || hasCode(err, codeNotFound) {
				return fmt.Errorf("polling task queue %s, %w", w.queue, err)
			}
			w.c.o.Log.Warn("polling failed, retrying", "queue", w.queue, "in", delay, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
			continue
		}
		delay = 100 * time.Millisecond
		if t == nil { // the long poll expired empty
			<-slots
			continue
		}
		running.Go(func() {
			defer func() { <-slots }()
			w.execute(ctx, t)
		})
	}
}

// task is an activity task as polled.
type task struct {
	token                      []byte
	activityType, activityID   string
	workflowID                 string
	input                      []Payload
	traceparent                string
	attempt                    int
	startToClose, heartbeatMax time.Duration
}

// poll long-polls the queue for one task; nil when the poll expired empty.
func (w *Worker) poll(ctx context.Context) (*task, error) {
	var req []byte
	req = appendString(req, 1, w.c.o.Namespace)
	req = appendMessage(req, 2, func(b []byte) []byte {
		b = appendString(b, 1, w.queue)
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		return protowire.AppendVarint(b, 1) // TASK_QUEUE_KIND_NORMAL
	})
	req = appendString(req, 3, w.c.o.Identity)
	pctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	resp, err := w.c.call(pctx, "PollActivityTaskQueue", req)
	if err != nil {
		return nil, err
	}
	return parseTask(resp)
}

// parseTask reads a PollActivityTaskQueueResponse.
func parseTask(b []byte) (*task, error) {
	t := &task{}
	name := func(v []byte) (s string, err error) { // a message whose field 1 is a string
		err = fields(v, func(num protowire.Number, v []byte, _ uint64) error {
			if num == 1 {
				s = string(v)
			}
			return nil
		})
		return s, err
	}
	err := fields(b, func(num protowire.Number, v []byte, n uint64) (err error) {
		switch num {
		case 1:
			t.token = v
		case 4:
			t.workflowID, err = name(v)
		case 5:
			t.activityType, err = name(v)
		case 6:
			t.activityID = string(v)
		case 7:
			t.traceparent = traceparentOf(v)
		case 8:
			t.input, err = parsePayloads(v)
		case 13:
			t.attempt = int(n)
		case 15:
			t.startToClose, err = parseDuration(v)
		case 16:
			t.heartbeatMax, err = parseDuration(v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading an activity task, %w", err)
	}
	if len(t.token) == 0 {
		return nil, nil
	}
	return t, nil
}

// errCanceled is the cause of a task's context when the workflow
// cancelled the activity.
var errCanceled = errors.New("the activity was cancelled")

// execute runs t with its handler and answers the server.
func (w *Worker) execute(ctx context.Context, t *task) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if t.startToClose > 0 {
		var stop context.CancelFunc
		actx, stop = context.WithTimeout(actx, t.startToClose)
		defer stop()
	}
	hb := &heartbeater{c: w.c, token: t.token, interval: throttle(t.heartbeatMax), cancel: cancel}
	actx = context.WithValue(actx, heartbeatKey{}, hb)
	var span *traces.Span
	if w.Traces != nil {
		span = traces.New(t.traceparent, "RunActivity:"+t.activityType, traces.KindServer)
		span.Attrs = map[string]string{"temporalWorkflowID": t.workflowID, "temporalActivityID": t.activityID}
		actx = context.WithValue(actx, traceKey{}, span.Traceparent())
	}
	var out *Payload
	err := fmt.Errorf("no handler for activity type %s on task queue %s", t.activityType, w.queue)
	if h := w.handlers[t.activityType]; h != nil {
		var input []Payload
		if input, err = open(w.c.o.Codec, t.input); err == nil {
			out, err = run(actx, h, input)
		} else {
			err = NonRetryable(fmt.Sprintf("decrypting the input, %v", err), "BadArgument", nil)
		}
		if err == nil && out != nil {
			var sealed Payload
			if sealed, err = seal(w.c.o.Codec, *out); err == nil {
				out = &sealed
			}
		}
	}
	hb.stop()
	w.Traces.Finish(span, err)
	// Failed because its start-to-close timeout passed: the server times
	// the attempt out (a timeout, retried as the policy says), as the SDK
	// leaves it; an answer racing the server's timer would turn the
	// timeout into this attempt's failure.
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), context.DeadlineExceeded) {
		w.c.o.Log.Debug("activity task past its start-to-close timeout: left to the server", "activity", t.activityType, "id", t.activityID)
		return
	}

	// The answer goes out even while the worker stops.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	var req []byte
	req = appendBytes(req, 1, t.token)
	method := "RespondActivityTaskCompleted"
	switch {
	case errors.Is(context.Cause(actx), errCanceled):
		method = "RespondActivityTaskCanceled"
	case err != nil:
		method = "RespondActivityTaskFailed"
		req = appendFailure(req, 2, err)
	case out != nil:
		req = appendPayloads(req, 2, *out)
	}
	req = appendString(req, 3, w.c.o.Identity)
	req = appendString(req, 4, w.c.o.Namespace)
	if err := w.c.retry(rctx, func(ctx context.Context) error {
		_, err := w.c.call(ctx, method, req)
		return err
	}); err != nil && !hasCode(err, codeNotFound) { // not found: the attempt timed out meanwhile
		w.c.o.Log.Warn("answering an activity task failed", "activity", t.activityType, "id", t.activityID, "workflow", t.workflowID, "error", err)
	}
}

// run calls h, turning a panic into the task's error.
func run(ctx context.Context, h Handler, input []Payload) (out *Payload, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("the activity panicked: %v", r)
		}
	}()
	return h(ctx, input)
}

// throttle is how often heartbeats are sent at most, as the SDKs do: 80 %
// of the heartbeat timeout, else every 30 s.
func throttle(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 30 * time.Second
	}
	return min(timeout*4/5, 60*time.Second)
}

type heartbeatKey struct{}

// Heartbeat records that the activity running in ctx makes progress, with
// details (encoded as JSON). Heartbeats are sent at most once per
// throttle interval, the latest details winning; when the answer says the
// workflow cancelled the activity, ctx is cancelled. Outside an activity
// it does nothing.
func Heartbeat(ctx context.Context, details any) {
	if hb, ok := ctx.Value(heartbeatKey{}).(*heartbeater); ok {
		hb.record(details)
	}
}

// heartbeater sends one task's heartbeats.
type heartbeater struct {
	c        *Client
	token    []byte
	interval time.Duration
	cancel   context.CancelCauseFunc

	mu      sync.Mutex
	last    time.Time // when the last heartbeat was sent
	details any
	pending bool // details not yet sent
	sending bool
	timer   *time.Timer
	stopped bool
}

func (h *heartbeater) record(details any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.details, h.pending = details, true
	h.schedule()
}

// schedule sends the pending details now or when the interval allows.
// Called with h.mu held.
func (h *heartbeater) schedule() {
	if !h.pending || h.sending || h.timer != nil || h.stopped {
		return
	}
	if wait := h.interval - time.Since(h.last); wait > 0 {
		h.timer = time.AfterFunc(wait, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.timer = nil
			h.schedule()
		})
		return
	}
	h.sending = true
	go h.send()
}

func (h *heartbeater) send() {
	h.mu.Lock()
	details := h.details
	h.pending = false
	h.mu.Unlock()
	err := h.beat(details)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sending, h.last = false, time.Now()
	if err != nil {
		h.c.o.Log.Warn("heartbeat failed", "error", err)
	}
	h.schedule()
}

// beat sends one heartbeat; a cancellation in its answer, or an activity
// the server no longer knows (it timed out), cancels the task's context.
func (h *heartbeater) beat(details any) error {
	p, err := jsonPayload(details)
	if err == nil {
		p, err = seal(h.c.o.Codec, p)
	}
	if err != nil {
		return err
	}
	var req []byte
	req = appendBytes(req, 1, h.token)
	req = appendPayloads(req, 2, p)
	req = appendString(req, 3, h.c.o.Identity)
	req = appendString(req, 4, h.c.o.Namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.c.call(ctx, "RecordActivityTaskHeartbeat", req)
	if hasCode(err, codeNotFound) {
		h.cancel(fmt.Errorf("the server no longer runs this activity attempt (timed out or completed), %w", err))
		return nil
	}
	if err != nil {
		return err
	}
	return fields(resp, func(num protowire.Number, _ []byte, n uint64) error {
		if num == 1 && n != 0 { // cancel_requested
			h.cancel(errCanceled)
		}
		return nil
	})
}

// stop ends the heartbeats of a task that returned.
func (h *heartbeater) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
}

// tracerHeader is the Temporal header the SDKs' tracing interceptors carry
// a span's context in: a JSON map of W3C fields (traceparent, …).
const tracerHeader = "_tracer-data"

// traceparentOf reads the traceparent of a temporal.api.common.v1.Header,
// "" when it carries none (or carries it encrypted).
func traceparentOf(header []byte) string {
	var tp string
	_ = fields(header, func(num protowire.Number, entry []byte, _ uint64) error {
		if num != 1 { // fields: map<string, Payload>
			return nil
		}
		var key string
		var value []byte
		_ = fields(entry, func(num protowire.Number, v []byte, _ uint64) error {
			switch num {
			case 1:
				key = string(v)
			case 2:
				value = v
			}
			return nil
		})
		if key != tracerHeader {
			return nil
		}
		p, err := codec.UnmarshalPayload(value)
		if err != nil {
			return nil
		}
		var m map[string]string
		if fromCodec(p).Encoding == encodingJSON && json.Unmarshal(p.Data, &m) == nil {
			tp = m["traceparent"]
		}
		return nil
	})
	return tp
}

type traceKey struct{}

// Traceparent is the trace context of the span of the activity task ctx
// runs, "" when it is not traced.
func Traceparent(ctx context.Context) string {
	tp, _ := ctx.Value(traceKey{}).(string)
	return tp
}
