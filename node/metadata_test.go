package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows/agentapi"
)

// TestBlockMetadata: in a network namespace of its own with a metadata
// service at 169.254.169.254, the rules BlockMetadata adds (once, however
// often it runs) refuse a MicroService's user and let root through.
func TestBlockMetadata(t *testing.T) {
	for _, tool := range []string{"ip", "iptables", "setpriv", "python3", "bash"} {
		if _, err := exec.LookPath(tool); err != nil || os.Geteuid() != 0 {
			t.Skipf("needs root and %s", tool)
		}
	}
	ns := fmt.Sprintf("msm-metadata-%d", os.Getpid())
	out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	in := func(argv ...string) ([]byte, error) {
		return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	}
	for _, argv := range [][]string{{"ip", "link", "set", "lo", "up"}, {"ip", "addr", "add", "169.254.169.254/32", "dev", "lo"}} {
		out, err := in(argv...)
		require.NoError(t, err, "%s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	server := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "python3", "-m", "http.server", "80", "--bind", "169.254.169.254")
	require.NoError(t, server.Start())
	t.Cleanup(func() { cancel(); _ = server.Wait() })
	// connects says whether uid (root when 0) opens a connection to it.
	connects := func(uid uint32) bool {
		argv := []string{"bash", "-c", "exec 3<>/dev/tcp/169.254.169.254/80"}
		if uid != 0 {
			id := fmt.Sprint(uid)
			argv = append([]string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}, argv...)
		}
		_, err := in(argv...)
		return err == nil
	}
	require.Eventually(t, func() bool { return connects(0) }, 10*time.Second, 50*time.Millisecond, "the metadata service answers")
	service := agentapi.ServiceUID("m", "m-c1")
	require.True(t, connects(service), "before the rules, a MicroService reaches it")

	require.NoError(t, BlockMetadata(in))
	require.NoError(t, BlockMetadata(in), "a node that starts again")
	assert.False(t, connects(service), "a MicroService is refused")
	assert.False(t, connects(agentapi.ServiceUIDBase), "the first user of the range")
	assert.False(t, connects(2*agentapi.ServiceUIDBase-1), "the last")
	assert.True(t, connects(0), "root (the node) still reaches it")
	assert.True(t, connects(agentapi.ServiceUIDBase-1), "and a user outside the range")
	rules, err := in("iptables", "-S", "OUTPUT")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(rules), "--uid-owner"), "one rule, however often it ran: %s", rules)
}

// TestBlockMetadataWithoutIptables: a host without iptables starts nothing
// and says what to install.
func TestBlockMetadataWithoutIptables(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := BlockMetadata(func(argv ...string) ([]byte, error) {
		t.Fatalf("ran %q", argv)
		return nil, nil
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "iptables is not installed")
}
