package azure_test

import (
	"context"
	"strings"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/cloudsim"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/azure"
	"github.com/msm-project/msm/providers/providertest"
)

func settings() catalog.Manager {
	return catalog.Manager{Kind: catalog.KindAzure,
		Node: catalog.NodeBoot{Temporal: "temporal.internal:7233", Namespace: "default", MSM: "/usr/local/bin/msm"},
		Azure: catalog.Azure{Subscription: "00000000-0000-0000-0000-000000000000", ResourceGroup: "rg", Location: "westeurope",
			Subnet: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
			Sizes:  []string{"Standard_D2s_v5", "Standard_D2as_v5"}, Zones: []string{"1", "2"},
			Image: "Canonical:ubuntu-24_04-lts:server:latest", AdminUser: "msm", SSHKey: "ssh-ed25519 AAAA ops"}}
}

func newSim(t *testing.T) (*cloudsim.Azure, *cloudsim.Hosts) {
	h := &cloudsim.Hosts{Prefix: "10.9.0."}
	az := cloudsim.NewAzure(h, cloudsim.AzureOptions{BootDelay: 20 * time.Millisecond})
	t.Cleanup(az.Close)
	return az, h
}

func newProvider(t *testing.T, az *cloudsim.Azure, owner string) *azure.Provider {
	t.Helper()
	p, err := azure.NewWithOptions(&azfake.TokenCredential{}, az.ClientOptions(), settings(), owner)
	require.NoError(t, err)
	p.Poll = 10 * time.Millisecond
	return p
}

func TestConformance(t *testing.T) {
	az, _ := newSim(t)
	providertest.Run(t, providertest.Harness{
		New:   func(t *testing.T, owner string) providers.Provider { return newProvider(t, az, owner) },
		Names: [2]string{"m-s1", "m-s2"},
		Full:  func(*testing.T) { az.NoCapacity("", "", false) },
	})
}

func TestCreateMakesNICThenVMWithCustomData(t *testing.T) {
	az, h := newSim(t)
	s, err := newProvider(t, az, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1", JoinToken: "k1 dG9rZW4="})
	require.NoError(t, err)
	assert.Equal(t, providers.Server{ID: "m-s1", Address: "10.9.0.1", Owner: "m"}, s)
	vms := az.VMs()
	require.Len(t, vms, 1)
	vm := vms[0]
	assert.Equal(t, "Standard_D2s_v5", vm.Size)
	assert.Equal(t, "1", vm.Zone)
	assert.Equal(t, "m-s1-nic", vm.NIC)
	assert.Equal(t, "m-s1-osdisk", vm.OSDisk)
	assert.Equal(t, map[string]string{"msm-owner": "m", "msm-server": "m-s1", "msm-key": "m/m-s1"}, vm.Tags)
	assert.Equal(t, "#cloud-config\nwrite_files:\n  - path: /etc/msm/join-token\n    owner: root:root\n    permissions: \"0600\"\n    content: \"k1 dG9rZW4=\\n\"\nruncmd:\n  - "+
		`["/usr/local/bin/msm","node","--server","m-s1","--manager","m","--address","temporal.internal:7233","--namespace","default","--block-metadata","--join-token-file","/etc/msm/join-token"]`+"\n",
		h.Data("m-s1"))
}

func TestCapacityFallsBackThroughZonesThenSizes(t *testing.T) {
	tests := []struct {
		name       string
		full       [][2]string // size, zone
		sku        bool
		wantSize   string
		wantZone   string
		noCapacity bool
	}{
		{name: "first has room", wantSize: "Standard_D2s_v5", wantZone: "1"},
		{name: "zone 1 of the first size full", full: [][2]string{{"Standard_D2s_v5", "1"}}, wantSize: "Standard_D2s_v5", wantZone: "2"},
		{name: "first size full (AllocationFailed)", full: [][2]string{{"Standard_D2s_v5", ""}}, wantSize: "Standard_D2as_v5", wantZone: "1"},
		{name: "first size not offered (SkuNotAvailable)", full: [][2]string{{"Standard_D2s_v5", ""}}, sku: true, wantSize: "Standard_D2as_v5", wantZone: "1"},
		{name: "all full", full: [][2]string{{"", ""}}, noCapacity: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			az, _ := newSim(t)
			for _, f := range tc.full {
				az.NoCapacity(f[0], f[1], tc.sku)
			}
			_, err := newProvider(t, az, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
			if tc.noCapacity {
				require.True(t, providers.IsNoCapacity(err), "%v", err)
				assert.Contains(t, err.Error(), "no configured size and zone has room (Standard_D2s_v5 in zone 1: AllocationFailed")
				for _, vm := range az.VMs() {
					assert.True(t, vm.Deleted, "nothing is left: %+v", vm)
				}
				for _, nic := range az.NICs() {
					assert.True(t, nic.Deleted, "nothing is left: %+v", nic)
				}
				return
			}
			require.NoError(t, err)
			var live []cloudsim.AzureVM
			for _, vm := range az.VMs() {
				if !vm.Deleted {
					live = append(live, vm)
				}
			}
			require.Len(t, live, 1)
			assert.Equal(t, tc.wantSize, live[0].Size)
			assert.Equal(t, tc.wantZone, live[0].Zone)
			assert.Equal(t, "Succeeded", live[0].ProvisioningState)
		})
	}
}

// TestRetryAfterACrashMakesNoSecondVM: the create ran and its result was
// lost; the retry finds the VM by name and key and boots nothing more.
func TestRetryAfterACrashMakesNoSecondVM(t *testing.T) {
	az, h := newSim(t)
	first, err := newProvider(t, az, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	again, err := newProvider(t, az, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, az.VMs(), 1)
	assert.Equal(t, 1, h.Booted(), "booted once")
}

func TestAnotherLaunchsVMIsNotTakenOver(t *testing.T) {
	az, _ := newSim(t)
	_, err := newProvider(t, az, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	_, err = newProvider(t, az, "m").Create(context.Background(), "other/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.True(t, providers.IsPermanent(err), "%v", err)
	assert.True(t, strings.Contains(err.Error(), "was not made by this launch"), err.Error())
}

func TestNewNeedsTheSettings(t *testing.T) {
	_, err := azure.NewWithOptions(&azfake.TokenCredential{}, nil, catalog.Manager{}, "m")
	require.ErrorContains(t, err, "manager.azure needs subscription, resource_group and location")
	m := settings()
	m.Azure.Image = "ubuntu"
	_, err = azure.NewWithOptions(&azfake.TokenCredential{}, nil, m, "m")
	require.ErrorContains(t, err, "manager.azure.image")
}

func TestCheckNamesAnUnknownSize(t *testing.T) {
	az, _ := newSim(t)
	require.NoError(t, newProvider(t, az, "m").Check(context.Background()))
	m := settings()
	m.Azure.Sizes = []string{"Standard_D2s_v5", "Standard_D2s_v9"}
	p, err := azure.NewWithOptions(&azfake.TokenCredential{}, az.ClientOptions(), m, "m")
	require.NoError(t, err)
	err = p.Check(context.Background())
	require.ErrorContains(t, err, "manager.azure.sizes: Standard_D2s_v9 is not a VM size of westeurope")
	assert.Zero(t, az.Calls("VirtualMachines.BeginCreateOrUpdate"))
}
