package version

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFromBuildInfo(t *testing.T) {
	stamp := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "dev"},
		{"no VCS stamp (go run, -buildvcs=false)", stamp("-trimpath", "true"), true, "dev"},
		{"a clean commit", stamp("vcs.revision", "8a0307d1c2b3e4f5a6b7c8d9e0f1a2b3c4d5e6f7", "vcs.modified", "false"), true, "8a0307d1c2b3"},
		{"changes in the work tree", stamp("vcs.revision", "8a0307d1c2b3e4f5a6b7c8d9e0f1a2b3c4d5e6f7", "vcs.modified", "true"), true, "8a0307d1c2b3+dirty"},
	} {
		assert.Equal(t, tc.want, fromBuildInfo(tc.info, tc.ok), tc.name)
	}
}

func TestLinkedVersionWins(t *testing.T) {
	was := Version
	defer func() { Version = was }()
	Version = "v9.9.9-test"
	assert.Equal(t, "v9.9.9-test", Get())
}
