package cloudinit

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/msm-project/msm/catalog"
)

// FuzzNodeDocument: whatever the settings, Node refuses them or writes a
// cloud-config whose one runcmd entry, read back as YAML, is exactly the
// argv of `msm node` with them, and whose files, with a join token or
// payload keys, are each at its path, readable by root only: no setting can
// add an argument, a command, a file or a cloud-config key.
func FuzzNodeDocument(f *testing.F) {
	f.Add("/usr/local/bin/msm", "temporal.internal:7233", "default", "/etc/ca.pem", "/etc/key", "m-s1", "m", true, "k1 c2VjcmV0", "c2 a2V5\nc1 b2xk\n")
	f.Add("/msm", "t:1", "ns", "", "", "s", "m", false, "", "")
	f.Add("/msm\n", "a\"b", "ns\\", "- x", "]: y", "#c", "&a *a", true, "k\"\n- x", "\n")
	f.Add("/msm", "x\x00y", "{{.}}", "'q'", "%", "a b", "runcmd:", false, "runcmd: [rm]", "- path: /etc/x\n")
	f.Fuzz(func(t *testing.T, msm, temporal, namespace, ca, apiKey, server, manager string, tls bool, token, codecKeys string) {
		boot := catalog.NodeBoot{MSM: msm, Temporal: temporal, Namespace: namespace, CA: ca, APIKeyFile: apiKey, TLS: tls}
		doc, err := Node(boot, server, manager, Secrets{JoinToken: token, CodecKeys: codecKeys})
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
		codec := strings.TrimSuffix(codecKeys, "\n")
		wantKeys := 1
		if token != "" || codec != "" {
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
			wantFiles = append(wantFiles, file{Path: JoinTokenPath, Owner: "root:root", Permissions: "0600", Content: token + "\n"})
		}
		if codec != "" {
			want = append(want, "--codec-key-file", CodecKeysPath)
			wantFiles = append(wantFiles, file{Path: CodecKeysPath, Owner: "root:root", Permissions: "0600", Content: codec + "\n"})
		}
		if len(got.Runcmd) != 1 || !slices.Equal(got.Runcmd[0], want) {
			t.Fatalf("runcmd %q, want [%q]\n%s", got.Runcmd, want, doc)
		}
		if !slices.Equal(got.WriteFiles, wantFiles) {
			t.Fatalf("write_files %+v, want %+v\n%s", got.WriteFiles, wantFiles, doc)
		}
	})
}
