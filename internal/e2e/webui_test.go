package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/msm-project/msm/workflows"
)

// TestWebUIShowsSummariesAndDetails (issue 15, acceptance 4): under msm
// dev, after `msm extend web`, the Temporal Web UI (2.42.1, as `temporal
// server start-dev` serves it), looked at in headless Chromium, shows the
// Extend's summary and the Manager's current details, decoded through the
// codec server msm dev runs; the UI's own API serves the same text (sealed,
// opened by that codec server). Screenshots are kept with the test's logs.
//
// The UI's workflow list has no summary column (ListWorkflowExecutions
// carries no user metadata, and its configurable columns hold none), so
// the list is checked for the Extend's run and the summaries are read
// where a person finds them: the Manager's User Metadata tab, whose
// "Events with Metadata" lists each operation's child workflow with its
// summary, beside the Manager's Current Details.
func TestWebUIShowsSummariesAndDetails(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium: `make chromium` installs it")
	}
	d := newDev(t, "")
	r := d.start()
	d.waitHealthy(r, func(workflows.Status) bool { return true })
	out, err := d.msm("extend", "web")
	require.NoError(t, err, out)
	d.waitFor(r, "web extended to 3", 60*time.Second, func(st workflows.Status) bool { return converged(1)(st) && st.Services[0].Ready == 3 })

	// Through the UI's API: the Extend's summary and the Manager's current
	// details, as the pages fetch them.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	ui := &uiAPI{base: fmt.Sprintf("http://127.0.0.1:%d", d.uiPort), codec: fmt.Sprintf("http://127.0.0.1:%d", d.codecPort),
		client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	var list workflowservice.ListWorkflowExecutionsResponse
	query := fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'extend'", d.manager)
	require.Eventually(t, func() bool {
		err := ui.fetch(http.MethodGet, "/api/v1/namespaces/default/workflows?query="+url.QueryEscape(query), nil, &list)
		return err == nil && len(list.GetExecutions()) == 1
	}, 15*time.Second, 250*time.Millisecond, "the UI's API lists the Extend: %s", query)
	extend := list.GetExecutions()[0].GetExecution().GetWorkflowId()
	var desc workflowservice.DescribeWorkflowExecutionResponse
	require.NoError(t, ui.fetch(http.MethodGet, "/api/v1/namespaces/default/workflows/"+url.PathEscape(extend), nil, &desc))
	var summary string
	require.NoError(t, ui.decode(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary), "the Extend's summary")
	assert.True(t, strings.HasPrefix(summary, "extend web 2 → 3"), "the Extend's summary: %q", summary)

	manager := workflows.ManagerID(d.manager)
	var mdesc workflowservice.DescribeWorkflowExecutionResponse
	require.NoError(t, ui.fetch(http.MethodGet, "/api/v1/namespaces/default/workflows/"+url.PathEscape(manager), nil, &mdesc))
	runID := mdesc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	// The current details are no history event: the UI asks the worker for
	// them with the SDK's built-in metadata query.
	var q workflowservice.QueryWorkflowResponse
	require.NoError(t, ui.fetch(http.MethodPost, "/api/v1/namespaces/default/workflows/"+url.PathEscape(manager)+"/query/__temporal_workflow_metadata",
		map[string]any{"execution": map[string]string{"workflowId": manager, "runId": runID}, "query": map[string]string{"queryType": "__temporal_workflow_metadata"}}, &q))
	require.NotEmpty(t, q.GetQueryResult().GetPayloads(), "the metadata query's result")
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, ui.decode(q.GetQueryResult().GetPayloads()[0], &meta), "the Manager's metadata")
	assert.Contains(t, meta.GetCurrentDetails(), "**Manager "+d.manager+"**")
	assert.Contains(t, meta.GetCurrentDetails(), "- web: 3/3 ready")

	// In the browser: the list holds the Extend's run; the Manager's User
	// Metadata tab shows the summary and the details rendered.
	b := newBrowser(t, chromium, filepath.Join(d.dir, "chromium"))
	b.show(ui.base+"/namespaces/default/workflows", extend, "Extend")
	b.keep(filepath.Join(d.dir, "workflow-list.png"), "MSM_KEEP_SCREENSHOT_LIST")
	page := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/user-metadata", ui.base, url.PathEscape(manager), runID)
	text := b.show(page, "Events with Metadata", summary, "Current Details", "Manager "+d.manager, "web: 3/3 ready")
	b.keep(filepath.Join(d.dir, "manager-details.png"), "MSM_KEEP_SCREENSHOT_DETAILS")
	assert.Contains(t, text, "Child Workflow "+summary+" Completed", "the Extend's row in Events with Metadata")
}

// uiAPI is the Web UI server's own HTTP API, the one its pages call: the
// Temporal API under /api/v1, in protojson.
type uiAPI struct {
	base, codec string
	client      *http.Client
}

// fetch calls the API and reads its answer into into. A POST carries the
// CSRF cookie's token in a header, as the pages send it.
func (u *uiAPI) fetch(method, path string, body any, into proto.Message) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.base+path, rd)
	if err != nil {
		return err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		for _, c := range u.client.Jar.Cookies(req.URL) {
			if c.Name == "_csrf" {
				req.Header.Set("X-CSRF-Token", c.Value)
			}
		}
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, tailOf(b, 500))
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, into)
}

// decode opens a payload the UI's API served as the UI does: it must be
// sealed (the server never holds the text), and the codec server msm dev
// runs for the UI opens it.
func (u *uiAPI) decode(p *commonpb.Payload, into any) error {
	if p == nil {
		return fmt.Errorf("no payload")
	}
	if enc := string(p.GetMetadata()["encoding"]); enc != "binary/encrypted" {
		return fmt.Errorf("the payload is %s, not sealed by msm's codec", enc)
	}
	codec := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: u.codec})
	opened, err := codec.Decode([]*commonpb.Payload{p})
	if err != nil {
		return fmt.Errorf("decoding through %s, %w", u.codec, err)
	}
	return converter.GetDefaultDataConverter().FromPayload(opened[0], into)
}

// browser is headless Chromium driven over its DevTools pipe (commands
// on fd 3, answers on fd 4, each JSON ended by a NUL). --dump-dom with a
// virtual time budget never returns on a running workflow's page (the UI
// keeps requests open there, which stall virtual time), so the page is
// read as it stands, again and again, as a person watching it would.
type browser struct {
	t       *testing.T
	in      *os.File
	answers chan cdpAnswer
	id      int
	session string
}

// cdpAnswer is Chromium's answer to the command of ID.
type cdpAnswer struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// newBrowser starts Chromium with its profile in dir, on one blank tab;
// the test's end kills it and its helpers.
func newBrowser(t *testing.T, chromium, dir string) *browser {
	cmdR, cmdW, err := os.Pipe()
	require.NoError(t, err)
	ansR, ansW, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--remote-debugging-pipe", "--window-size=1400,1600", "--user-data-dir="+dir, "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, ansW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	cmdR.Close()
	ansW.Close()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		cmdW.Close()
		ansR.Close()
	})
	b := &browser{t: t, in: cmdW, answers: make(chan cdpAnswer, 16)}
	go func() {
		defer close(b.answers)
		rd := bufio.NewReader(ansR)
		for {
			msg, err := rd.ReadBytes(0)
			if err != nil {
				return
			}
			var a cdpAnswer
			// Events (no ID) are not asked for and not needed.
			if json.Unmarshal(msg[:len(msg)-1], &a) == nil && a.ID != 0 {
				b.answers <- a
			}
		}
	}()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	return b
}

// call sends one DevTools command (to the tab once attached) and reads
// its result into result (nil: ignored).
func (b *browser) call(method string, params map[string]any, result any) {
	t := b.t
	t.Helper()
	b.id++
	msg := map[string]any{"id": b.id, "method": method, "params": params}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	data, err := json.Marshal(msg)
	require.NoError(t, err)
	_, err = b.in.Write(append(data, 0))
	require.NoError(t, err, "sending %s to chromium", method)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case a, ok := <-b.answers:
			require.True(t, ok, "chromium exited before answering %s", method)
			if a.ID != b.id {
				continue
			}
			if a.Error != nil {
				t.Fatalf("chromium: %s: %s", method, a.Error.Message)
			}
			if result != nil {
				require.NoError(t, json.Unmarshal(a.Result, result), "%s", method)
			}
			return
		case <-timeout:
			t.Fatalf("chromium did not answer %s within 30 s", method)
		}
	}
}

// text is what the tab shows, its frames' text included (the UI renders
// markdown in a same-origin iframe), with white space collapsed and the
// fraction slash the markdown renderer makes of "3/3" read as a slash.
func (b *browser) text() string {
	var res struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	b.call("Runtime.evaluate", map[string]any{"returnByValue": true, "expression": `(() => {
		let t = document.body ? document.body.innerText : "";
		for (const f of document.querySelectorAll("iframe")) {
			try { t += "\n" + f.contentDocument.body.innerText; } catch (e) {}
		}
		return t;
	})()`}, &res)
	return strings.Join(strings.Fields(strings.ReplaceAll(res.Result.Value, "\u2044", "/")), " ")
}

// show opens page and watches it until it shows every one of want,
// reloading it now and then (the UI reads some of it once, on load); it
// fails the test after two minutes with the end of what it showed.
func (b *browser) show(page string, want ...string) string {
	t := b.t
	t.Helper()
	b.call("Page.navigate", map[string]any{"url": page}, nil)
	deadline := time.Now().Add(2 * time.Minute)
	reload := time.Now().Add(20 * time.Second)
	for {
		text := b.text()
		var missing []string
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Web UI at %s does not show %q within 2 minutes; it shows (end):\n%s", page, missing, tailOf([]byte(text), 3000))
		}
		if time.Now().After(reload) {
			b.call("Page.reload", map[string]any{}, nil)
			reload = time.Now().Add(20 * time.Second)
		}
		time.Sleep(time.Second)
	}
}

// keep takes a screenshot of the tab to path, logs it, and copies it to
// the file the environment variable env names, if set.
func (b *browser) keep(path, env string) {
	t := b.t
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	b.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s (%s keeps a copy)", path, env)
	if dst := os.Getenv(env); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
	}
}
