package cloudinit

import (
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/msm-project/msm/catalog"
)

// FuzzNodeDocument: whatever the settings, Node refuses them or writes a
// cloud-config whose one runcmd entry, read back as YAML, is exactly the
// argv of `msm node` with them: no setting can add an argument, a command
// or a cloud-config key.
func FuzzNodeDocument(f *testing.F) {
	f.Add("/usr/local/bin/msm", "temporal.internal:7233", "default", "/etc/ca.pem", "/etc/key", "m-s1", "m", true)
	f.Add("/msm", "t:1", "ns", "", "", "s", "m", false)
	f.Add("/msm\n", "a\"b", "ns\\", "- x", "]: y", "#c", "&a *a", true)
	f.Add("/msm", "x\x00y", "{{.}}", "'q'", "%", "a b", "runcmd:", false)
	f.Fuzz(func(t *testing.T, msm, temporal, namespace, ca, apiKey, server, manager string, tls bool) {
		boot := catalog.NodeBoot{MSM: msm, Temporal: temporal, Namespace: namespace, CA: ca, APIKeyFile: apiKey, TLS: tls}
		doc, err := Node(boot, server, manager)
		if err != nil {
			return
		}
		var got struct {
			Runcmd [][]string `yaml:"runcmd"`
		}
		var keys map[string]any
		if err := yaml.Unmarshal([]byte(doc), &keys); err != nil {
			t.Fatalf("the document is not YAML: %v\n%s", err, doc)
		}
		if len(keys) != 1 || keys["runcmd"] == nil {
			t.Fatalf("the document has keys %v, want runcmd only\n%s", keys, doc)
		}
		if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
			t.Fatalf("runcmd is not a list of argument lists: %v\n%s", err, doc)
		}
		want := append([]string{msm}, NodeArgs(boot, server, manager)...)
		if len(got.Runcmd) != 1 || !slices.Equal(got.Runcmd[0], want) {
			t.Fatalf("runcmd %q, want [%q]\n%s", got.Runcmd, want, doc)
		}
	})
}
