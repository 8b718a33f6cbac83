// Package cloudinit writes the cloud-init document a launched server boots
// with (EC2 user data, Azure custom data): it starts `msm node`.
package cloudinit

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/msm-project/msm/catalog"
)

// NodeArgs are the arguments of `msm node` for server: the Temporal
// settings of boot, which the node also passes to its agents.
func NodeArgs(boot catalog.NodeBoot, server, manager string) []string {
	args := []string{"node", "--server", server, "--manager", manager,
		"--address", boot.Temporal, "--namespace", boot.Namespace}
	if boot.TLS {
		args = append(args, "--tls")
	}
	if boot.CA != "" {
		args = append(args, "--tls-ca", boot.CA)
	}
	if boot.APIKeyFile != "" {
		args = append(args, "--api-key-file", boot.APIKeyFile)
	}
	return args
}

// JoinTokenPath and CodecKeysPath are where a launched server's node finds
// its join token and the payload keys, written by cloud-init (write_files)
// before the node starts.
const (
	JoinTokenPath = "/etc/msm/join-token"
	CodecKeysPath = "/etc/msm/codec-keys"
)

// Secrets are what a server's node gets in its document besides its
// command: its join token (trust.Key.Encode of the server's key; "" when
// reports are not authenticated) and the payload keys (trust.EncodeKeys;
// "" when payloads are not encrypted).
type Secrets struct {
	JoinToken, CodecKeys string
}

// Node is the cloud-init document that starts `msm node` for server on
// a new instance: one runcmd entry, an argument list (no shell), so no
// setting can be read as shell syntax. The node hides the instance
// metadata service from MicroServices before it starts anything
// (--block-metadata): the instance's role credentials are there, and this
// document too. Each of the secrets it has, the document writes to its
// file (JoinTokenPath, CodecKeysPath), readable by root only, and the node
// reads it there.
func Node(boot catalog.NodeBoot, server, manager string, secrets Secrets) (string, error) {
	if boot.Temporal == "" {
		return "", fmt.Errorf("manager.node.temporal is not set; set the Temporal frontend address the servers dial, e.g. temporal.internal:7233")
	}
	argv := append(append([]string{boot.MSM}, NodeArgs(boot, server, manager)...), "--block-metadata")
	for _, a := range argv {
		if a == "" || strings.ContainsAny(a, "\x00\n") {
			return "", fmt.Errorf("the node command %q has an empty or multi-line argument; check manager.node", argv)
		}
		// JSON would write invalid UTF-8 as U+FFFD (the server would run
		// another argument than the one asked for), and leaves DEL and the
		// C1 controls as they are, which YAML refuses (the server would not
		// start its node at all).
		if !utf8.ValidString(a) || strings.IndexFunc(a, unicode.IsControl) >= 0 {
			return "", fmt.Errorf("the node command %q has an argument that is not UTF-8 or holds a control character; check manager.node", argv)
		}
	}
	var files string
	for _, f := range []struct{ flag, path, content string }{
		{"--join-token-file", JoinTokenPath, secrets.JoinToken},
		{"--codec-key-file", CodecKeysPath, strings.TrimSuffix(secrets.CodecKeys, "\n")},
	} {
		if f.content == "" {
			continue
		}
		if !utf8.ValidString(f.content) || strings.IndexFunc(f.content, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) >= 0 {
			return "", fmt.Errorf("the node's %s is not lines of text", f.path)
		}
		argv = append(argv, f.flag, f.path)
		content, err := json.Marshal(f.content + "\n")
		if err != nil {
			return "", err
		}
		if files == "" {
			files = "write_files:\n"
		}
		files += "  - path: " + f.path + "\n    owner: root:root\n    permissions: \"0600\"\n    content: " + string(content) + "\n"
	}
	// JSON strings are YAML flow scalars: the list quotes every argument.
	b, err := json.Marshal(argv)
	if err != nil {
		return "", err
	}
	return "#cloud-config\n" + files + "runcmd:\n  - " + string(b) + "\n", nil
}
