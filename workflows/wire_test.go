package workflows_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// wireMessages are the messages of the contract between a Manager's
// workers, nodes and agents (agentapi.Wire), by the name of their file in
// testdata/wire/<version>/, with what each decodes into now.
var wireMessages = map[string]func() any{
	"reconcile-result.json": func() any { return &workflows.ReconcileResult{} },
	"node-up.json":          func() any { return &workflows.NodeUpSignal{} },
	"overload.json":         func() any { return &agentapi.OverloadSignal{} },
	"error-report.json":     func() any { return &agentapi.ErrorReport{} },
	"usage.json":            func() any { return &workflows.UsageSignal{} },
	"step-results.json":     func() any { return &workflows.StepResults{} },
	"load-result.json":      func() any { return &agentapi.LoadServiceResult{} },
}

// TestWireContractReadsEveryVersion: every message of every wire version
// kept in testdata/wire/ decodes into this code's types with no field left
// over (a field of an older peer this code no longer knows would be lost
// silently), and says the same again when encoded (nothing misread). The
// files of a version are written once, when it is the current one, and
// never changed: a change an older peer would misread must raise
// agentapi.Wire and add the new version's files.
func TestWireContractReadsEveryVersion(t *testing.T) {
	dirs, err := filepath.Glob("testdata/wire/*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		require.NoError(t, err)
		for _, f := range files {
			t.Run(filepath.Base(dir)+"/"+filepath.Base(f), func(t *testing.T) {
				mk := wireMessages[filepath.Base(f)]
				require.NotNil(t, mk, "%s is no message of the contract: add it to wireMessages", f)
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				v := mk()
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(v), "this code reads %s whole", f)
				again, err := json.Marshal(v)
				require.NoError(t, err)
				assert.JSONEq(t, string(b), string(again), "read and written again, %s says the same", f)
			})
		}
	}
	// The current version's messages are among them.
	_, err = os.Stat(filepath.Join("testdata", "wire", strconv.Itoa(agentapi.Wire)))
	assert.NoError(t, err, "agentapi.Wire is %d: keep its messages in testdata/wire/%d", agentapi.Wire, agentapi.Wire)
}

// reconcileResultV1 is ReconcileResult as a node or Manager of wire 1 has
// it: what an older peer decodes a newer message into.
type reconcileResultV1 struct {
	Stopped []string `json:"stopped"`
	Running []string `json:"running"`
}

// TestWireContractOlderPeersReadNewerMessages: a Manager of wire 1 reads a
// node's answer of wire 2 as it read one of its own version (the new
// fields are extra), and a report an agent or node of wire 1 signed still
// verifies: what the tags of its reports cover has not changed.
func TestWireContractOlderPeersReadNewerMessages(t *testing.T) {
	b, err := os.ReadFile("testdata/wire/2/reconcile-result.json")
	require.NoError(t, err)
	var old reconcileResultV1
	require.NoError(t, json.Unmarshal(b, &old))
	assert.Equal(t, reconcileResultV1{Stopped: []string{"m1-c9"}, Running: []string{"m1-c1", "m1-c2"}}, old)
	var now workflows.ReconcileResult
	require.NoError(t, json.Unmarshal(b, &now))
	assert.Equal(t, "8a0307d1c2b3", now.Version)
	assert.Equal(t, 2, now.Wire)
	var v1 workflows.ReconcileResult
	b, err = os.ReadFile("testdata/wire/1/reconcile-result.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &v1))
	assert.Zero(t, v1.Wire, "a node of wire 1 says no wire (and no version)")

	// What the tags of wire 1's signed reports covered, field by field.
	covered := map[string][]string{
		"node-up.json":      {"node-up", "s1", "m1-c1", "m1-c2"},
		"overload.json":     {"overload", "m1-c1", "web", "cpu 95% above 80% for 10s", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"error-report.json": {"error-report", "m1-c1", "web", "web exited with status 2", "exit"},
		"usage.json":        {"usage", "s1", "40", "55", "m1-c1", "12"},
		"step-results.json": {"results", "msm/m1/extend/web/2", "start", "s1", "m1-c5", "20004", "4242", "true", "", "", "false", ""},
	}
	for name, want := range covered {
		b, err := os.ReadFile(filepath.Join("testdata/wire/1", name))
		require.NoError(t, err)
		v := wireMessages[name]()
		require.NoError(t, json.Unmarshal(b, v))
		fields := reflect.ValueOf(v).MethodByName("Fields")
		require.True(t, fields.IsValid(), "%s has Fields", name)
		got := fields.Call(nil)[0].Interface().([]string)
		assert.Equal(t, want, got, "%s: a tag made by a peer of wire 1 covers these", name)
	}
}
