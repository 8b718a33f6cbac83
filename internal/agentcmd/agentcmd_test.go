package agentcmd_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/internal/agentcmd"
)

// TestMainFlagsAndUsage runs msm-agent's command line in-process, with env as its whole
// environment: what `msm agent` takes, msm-agent takes too.
func TestMainFlagsAndUsage(t *testing.T) {
	env := map[string]string{
		"TEMPORAL_ADDRESS": "10.9.8.7:7233", "TEMPORAL_NAMESPACE": "team-a", "MSM_MANAGER": "blue",
		"MSM_CONTAINER": "c-42", "MSM_SERVER": "rack-3",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		says []string
	}{
		{"help shows the defaults the environment sets", env, []string{"-h"}, 0,
			[]string{"Usage of msm-agent", `(default "10.9.8.7:7233")`, `(default "team-a")`, `(default "blue")`, `(default "c-42")`, `(default "rack-3")`, "-api-key-file", "-tls-ca"}},
		{"help without environment", nil, []string{"-h"}, 0, []string{`(default "127.0.0.1:7233")`, `(default "local")`}},
		{"no container", nil, []string{"--server", "s1"}, 2, []string{"msm-agent: --container ID is required"}},
		{"unknown flag", nil, []string{"--port", "1"}, 2, []string{"flag provided but not defined: -port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := agentcmd.Main(tc.args, &stderr, func(k string) string { return tc.env[k] })
			assert.Equal(t, tc.code, code, stderr.String())
			for _, s := range tc.says {
				assert.Contains(t, stderr.String(), s)
			}
		})
	}
}
