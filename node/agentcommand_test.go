package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAgentCommandPrefersTheLeanAgent: a node starts msm-agent when it is
// an executable beside msm, and `msm agent` otherwise, saying why.
func TestAgentCommandPrefersTheLeanAgent(t *testing.T) {
	tests := []struct {
		name    string
		install func(t *testing.T, lean string)
		lean    bool
		why     string
	}{
		{"installed beside msm", func(t *testing.T, lean string) {
			require.NoError(t, os.WriteFile(lean, []byte("#!/bin/sh\n"), 0o755))
		}, true, ""},
		{"absent", func(*testing.T, string) {}, false, "no msm-agent beside msm"},
		{"not executable", func(t *testing.T, lean string) {
			require.NoError(t, os.WriteFile(lean, []byte("#!/bin/sh\n"), 0o644))
		}, false, "is not an executable file"},
		{"a directory", func(t *testing.T, lean string) {
			require.NoError(t, os.Mkdir(lean, 0o755))
		}, false, "is not an executable file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			msm, lean := filepath.Join(dir, "msm"), filepath.Join(dir, LeanAgent)
			require.NoError(t, os.WriteFile(msm, []byte("#!/bin/sh\n"), 0o755))
			tc.install(t, lean)
			cmd, why := AgentCommand(msm)
			if tc.lean {
				assert.Equal(t, []string{lean}, cmd)
				assert.Empty(t, why)
				return
			}
			assert.Equal(t, []string{msm, "agent"}, cmd)
			assert.Contains(t, why, tc.why)
		})
	}
}
