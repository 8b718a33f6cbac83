package cloudinit

import (
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/msm-project/msm/catalog"
)

// FuzzNodeDocument: whatever the settings, Node refuses them or writes a
// cloud-config whose one runcmd entry, read back as YAML, is exactly the
// argv of `msm node` with them, and whose one file, with a join token, is
// the token at JoinTokenPath, readable by root only: no setting can add an
// argument, a command, a file or a cloud-config key.
func FuzzNodeDocument(f *testing.F) {
	f.Add("/usr/local/bin/msm", "temporal.internal:7233", "default", "/etc/ca.pem", "/etc/key", "m-s1", "m", true, "k1 c2VjcmV0")
	f.Add("/msm", "t:1", "ns", "", "", "s", "m", false, "")
	f.Add("/msm\n", "a\"b", "ns\\", "- x", "]: y", "#c", "&a *a", true, "k\"\n- x")
	f.Add("/msm", "x\x00y", "{{.}}", "'q'", "%", "a b", "runcmd:", false, "runcmd: [rm]")
	f.Fuzz(func(t *testing.T, msm, temporal, namespace, ca, apiKey, server, manager string, tls bool, token string) {
		boot := catalog.NodeBoot{MSM: msm, Temporal: temporal, Namespace: namespace, CA: ca, APIKeyFile: apiKey, TLS: tls}
		doc, err := Node(boot, server, manager, token)
		if err != nil {
			return
		}
		type file struct {
			Path, Owner, Permissions, Content string
		}
		var got struct {
			Runcmd     [][]string `yaml:"runcmd"`
			WriteFiles []file     `yaml:"write_files"`
		}
		var keys map[string]any
		if err := yaml.Unmarshal([]byte(doc), &keys); err != nil {
			t.Fatalf("the document is not YAML: %v\n%s", err, doc)
		}
		wantKeys := 1
		if token != "" {
			wantKeys = 2
		}
		if len(keys) != wantKeys || keys["runcmd"] == nil {
			t.Fatalf("the document has keys %v, want runcmd (and write_files with a token)\n%s", keys, doc)
		}
		if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
			t.Fatalf("runcmd is not a list of argument lists: %v\n%s", err, doc)
		}
		want := append(append([]string{msm}, NodeArgs(boot, server, manager)...), "--block-metadata")
		var wantFiles []file
		if token != "" {
			want = append(want, "--join-token-file", JoinTokenPath)
			wantFiles = []file{{Path: JoinTokenPath, Owner: "root:root", Permissions: "0600", Content: token + "\n"}}
		}
		if len(got.Runcmd) != 1 || !slices.Equal(got.Runcmd[0], want) {
			t.Fatalf("runcmd %q, want [%q]\n%s", got.Runcmd, want, doc)
		}
		if !slices.Equal(got.WriteFiles, wantFiles) {
			t.Fatalf("write_files %+v, want %+v\n%s", got.WriteFiles, wantFiles, doc)
		}
	})
}
