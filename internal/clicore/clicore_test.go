package clicore

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		name    string
		t       *Temporal
		verbose bool
		want    []string // the messages written, in order
	}{
		{"text, quiet SDK", &Temporal{}, false, []string{"own info", "decision", "sdk warning"}},
		{"json, quiet SDK", &Temporal{LogFormat: LogJSON}, false, []string{"own info", "decision", "sdk warning"}},
		{"json, verbose SDK", &Temporal{LogFormat: LogJSON, Verbose: true}, true, []string{"own info", "poll", "decision", "sdk warning"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.t.Logger(&out).Info("own info", "k", 1)
			sdk := tc.t.SDKLogger(&out).With("WorkflowType", "Manager")
			sdk.Info("poll", "TaskQueue", "msm")
			sdk.Info("decision", DecisionKey, "extend", "TraceID", "4bf92f3577b34da6a3ce929d0e0e4736")
			sdk.Debug("debug")
			sdk.Warn("sdk warning")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var msgs []string
			for _, l := range lines {
				if tc.t.LogFormat == LogJSON {
					var m map[string]any
					require.NoError(t, json.Unmarshal([]byte(l), &m), l)
					msgs = append(msgs, m["msg"].(string))
					if m["msg"] == "decision" {
						assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", m["TraceID"])
						assert.Equal(t, "Manager", m["WorkflowType"])
					}
					continue
				}
				_, rest, _ := strings.Cut(l, "msg=")
				msg, _, _ := strings.Cut(strings.Trim(rest, `"`), " ")
				msgs = append(msgs, strings.Trim(msg, `"`))
			}
			// "own info" and "sdk warning" are two words: compare prefixes.
			require.Len(t, msgs, len(tc.want), "%q", lines)
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(w, msgs[i]), "%q is %q", msgs[i], w)
			}
		})
	}
	assert.NoError(t, (&Temporal{LogFormat: LogJSON}).CheckLogFormat())
	assert.NoError(t, (&Temporal{}).CheckLogFormat())
	assert.EqualError(t, (&Temporal{LogFormat: "yaml"}).CheckLogFormat(), `--log-format "yaml" is not a format: use text or json`)
	assert.Contains(t, (&Temporal{LogFormat: LogJSON}).Env(), "MSM_LOG_FORMAT=json", "agents log as their node does")
}
