package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/cloudsim"
	"github.com/msm-project/msm/internal/faults"
	"github.com/msm-project/msm/workflows"
)

// azureCatalog is web ×2 on VMs of 2 slots in the simulated Azure at
// endpoint: Standard_D2s_v5 first, Standard_D2as_v5 when it has no room.
func (c *cluster) azureCatalog(endpoint string) {
	c.t.Helper()
	yaml := fmt.Sprintf(`manager:
  kind: azure
  liveness: 3s
  server: {slots: 2, ports: 20000-20019}
  max_servers: 4
  node: {temporal: %q}
  azure:
    subscription: 00000000-0000-0000-0000-000000000000
    resource_group: msm-e2e
    location: westeurope
    subnet: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/msm
    sizes: [Standard_D2s_v5, Standard_D2as_v5]
    zones: ["1"]
    image: Canonical:ubuntu-24_04-lts:server:latest
    ssh_public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e e2e
    endpoint: %s
services:
  - name: web
    command: /usr/local/bin/demo
    args: ["--port={{.Port}}", "--name={{.Service}}", "--listen=0.0.0.0"]
    replicas: {min: 1, initial: 2, max: 6}
`, c.frontend, endpoint)
	require.NoError(c.t, os.WriteFile(c.catalog, []byte(yaml), 0o644))
}

func vmsOf(az *cloudsim.Azure, server string) []cloudsim.AzureVM {
	var out []cloudsim.AzureVM
	for _, vm := range az.VMs() {
		if vm.Name == server {
			out = append(out, vm)
		}
	}
	return out
}

// TestAzureKindCreatesAndDeletesVMs runs the azure kind's real SDK clients,
// in the worker process, against the simulated Resource Manager (the SDK's
// fake server transports behind an HTTPS endpoint, with a managed-identity
// token endpoint): an Extend that needs a server creates a VM whose booted
// node registers and serves; a size without room makes the next one used;
// with no room at all the Extend fails with an explicit no-capacity outcome
// and nothing is left; the worker killed right after a create still makes
// one VM; shrinking a server to zero deletes its VM, NIC and
// disk.
func TestAzureKindCreatesAndDeletesVMs(t *testing.T) {
	c := newCluster(t, spec{hosts: true})
	inst := newDockerInstances(c)
	az := cloudsim.NewAzure(inst, cloudsim.AzureOptions{BootDelay: 200 * time.Millisecond})
	t.Cleanup(az.Close)
	url, cert := az.Serve()
	certFile := filepath.Join(c.dir, "arm.pem")
	require.NoError(t, os.WriteFile(certFile, cert, 0o644))
	c.azureCatalog(url)
	s1, s2 := c.manager+"-s1", c.manager+"-s2"
	c.ranges = map[string][2]int{s1: {20000, 20019}, s2: {20000, 20019}}
	// The worker's credential is the managed identity the simulator serves
	// (an empty AZURE_CLIENT_ID would ask for a user-assigned one: unset).
	env := []string{"IDENTITY_ENDPOINT=" + url + "/msi/token", "IDENTITY_HEADER=" + cloudsim.IdentityHeader, "SSL_CERT_FILE=" + certFile,
		"MSM_KEY_FILE=" + c.keyRing()} // each VM's custom data gives its node its join token
	for _, v := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"} {
		require.Empty(t, os.Getenv(v), "the test runs without %s", v)
	}

	// The worker dies right after the Extend's create returned (before its
	// result is recorded): the retry must make no second VM.
	died := c.startEnv("worker", append(env, faults.Env+"="+workflows.WorkflowExtend+":launch"), "worker", "--catalog", c.catalog)
	st := c.waitFor("web ×2 on the first VM", 120*time.Second, converged(0))
	c.assertAuthenticated(st)
	require.Len(t, st.Servers, 1)
	vm := vmsOf(az, s1)
	require.Len(t, vm, 1)
	assert.Equal(t, "Standard_D2s_v5", vm[0].Size)
	assert.Equal(t, c.manager, vm[0].Tags["msm-owner"])
	assert.Equal(t, vm[0].PrivateIP, st.Servers[0].Address)
	assert.Contains(t, string(vm[0].CustomData), `"--server","`+s1+`"`)
	c.assertServing(st)

	az.NoCapacity("Standard_D2s_v5", "", false)
	_, err := c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	c.restartWorker(died, 90*time.Second, env...)
	st = c.waitFor("web ×3, the third on a second VM", 120*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 3
	})
	vm = vmsOf(az, s2)
	require.Len(t, vm, 1, "one VM for the retried create")
	assert.Equal(t, "Standard_D2as_v5", vm[0].Size, "the next size, after AllocationFailed")
	c.assertServing(st)
	c.requireInvariants(30 * time.Second)

	az.NoCapacity("", "", true)
	_, err = c.msm("extend", "web", "--count", "2")
	require.NoError(t, err)
	st = c.waitFor("the no-capacity outcome", 90*time.Second, func(st workflows.Status) bool {
		return strings.Contains(eventsOf(st), "no configured size and zone has room")
	})
	st = c.waitFor("the operation over", 30*time.Second, func(st workflows.Status) bool { return st.Operations == 0 })
	assert.Equal(t, 4, st.Services[0].Ready)
	for _, vm := range az.VMs() {
		if vm.Name != s1 && vm.Name != s2 {
			assert.True(t, vm.Deleted, "a VM of a failed allocation is not left behind: %+v", vm)
		}
	}

	_, err = c.msm("scale", "web", "2")
	require.NoError(t, err)
	st = c.waitFor("web ×2 and the second server released", 90*time.Second, func(st workflows.Status) bool {
		return len(st.Servers) == 1 && st.Services[0].Desired == 2 && st.Services[0].Ready == 2 && st.Operations == 0
	})
	assert.True(t, vmsOf(az, s2)[0].Deleted)
	assert.NotContains(t, az.Disks(), s2+"-osdisk")
	for _, nic := range az.NICs() {
		if nic.Name == s2+"-nic" {
			assert.True(t, nic.Deleted)
		}
	}
	assert.Eventually(t, func() bool { return !inst.running(s2) }, 10*time.Second, 100*time.Millisecond)
}
