package cloudsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v8"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSub    = defaultAzureSubscription
	testRG     = "msm-rg"
	testSubnet = "/subscriptions/" + testSub + "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
	testSize   = "Standard_D2s_v3"
)

// azLauncher records Boot and Stop calls; the Nth Boot returns 10.9.0.N,
// and a Boot whose user data is "fail" fails.
type azLauncher struct {
	mu    sync.Mutex
	boots []azBoot
	stops []string
}

type azBoot struct {
	id   string
	data string
}

func (l *azLauncher) Boot(id string, userData []byte) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.boots = append(l.boots, azBoot{id, string(userData)})
	if string(userData) == "fail" {
		return "", errors.New("kernel panic")
	}
	return fmt.Sprintf("10.9.0.%d", len(l.boots)), nil
}

func (l *azLauncher) Stop(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stops = append(l.stops, id)
	return nil
}

func (l *azLauncher) Boots() []azBoot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]azBoot(nil), l.boots...)
}

func (l *azLauncher) Stops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.stops...)
}

// azClients are the real SDK clients the tests drive the simulator with.
type azClients struct {
	vms   *armcompute.VirtualMachinesClient
	disks *armcompute.DisksClient
	nics  *armnetwork.InterfacesClient
}

func newAzClients(t *testing.T, cred azcore.TokenCredential, opts *arm.ClientOptions) azClients {
	t.Helper()
	vms, err := armcompute.NewVirtualMachinesClient(testSub, cred, opts)
	require.NoError(t, err)
	disks, err := armcompute.NewDisksClient(testSub, cred, opts)
	require.NoError(t, err)
	nics, err := armnetwork.NewInterfacesClient(testSub, cred, opts)
	require.NoError(t, err)
	return azClients{vms, disks, nics}
}

func newAzureSim(t *testing.T, o AzureOptions) (*Azure, *azLauncher, azClients) {
	t.Helper()
	l := &azLauncher{}
	a := NewAzure(l, o)
	t.Cleanup(a.Close)
	return a, l, newAzClients(t, &azfake.TokenCredential{}, a.ClientOptions())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nicID(rg, name string) string {
	return "/subscriptions/" + testSub + "/resourceGroups/" + rg + "/providers/Microsoft.Network/networkInterfaces/" + name
}

func nicParams() armnetwork.Interface {
	return armnetwork.Interface{
		Location: to.Ptr("westeurope"),
		Tags:     map[string]*string{"msm": to.Ptr("yes")},
		Properties: &armnetwork.InterfacePropertiesFormat{
			IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{
				Name: to.Ptr("ipconfig1"),
				Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
					Subnet:                    &armnetwork.Subnet{ID: to.Ptr(testSubnet)},
					PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
				},
			}},
		},
	}
}

func createNIC(t *testing.T, c azClients, rg, name string) armnetwork.Interface {
	t.Helper()
	ctx := testCtx(t)
	p, err := c.nics.BeginCreateOrUpdate(ctx, rg, name, nicParams(), nil)
	require.NoError(t, err)
	res, err := p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	return res.Interface
}

// vmParams is a VM of size with customData data on NIC nic of testRG.
func vmParams(size, data, nic string, mods ...func(*armcompute.VirtualMachine)) armcompute.VirtualMachine {
	vm := armcompute.VirtualMachine{
		Location: to.Ptr("westeurope"),
		Tags:     map[string]*string{"msm-pool": to.Ptr("p1")},
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(size))},
			StorageProfile: &armcompute.StorageProfile{
				ImageReference: &armcompute.ImageReference{
					Publisher: to.Ptr("Canonical"), Offer: to.Ptr("ubuntu-24_04-lts"), SKU: to.Ptr("server"), Version: to.Ptr("latest"),
				},
				OSDisk: &armcompute.OSDisk{CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage)},
			},
			OSProfile: &armcompute.OSProfile{
				AdminUsername: to.Ptr("msm"),
				CustomData:    to.Ptr(base64.StdEncoding.EncodeToString([]byte(data))),
			},
			NetworkProfile: &armcompute.NetworkProfile{
				NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{ID: to.Ptr(nicID(testRG, nic))}},
			},
		},
	}
	for _, m := range mods {
		m(&vm)
	}
	return vm
}

func inZone(z string) func(*armcompute.VirtualMachine) {
	return func(vm *armcompute.VirtualMachine) { vm.Zones = []*string{to.Ptr(z)} }
}

// deleteWithVM sets the OS disk and the NICs to go with the VM.
func deleteWithVM(vm *armcompute.VirtualMachine) {
	vm.Properties.StorageProfile.OSDisk.DeleteOption = to.Ptr(armcompute.DiskDeleteOptionTypesDelete)
	for _, n := range vm.Properties.NetworkProfile.NetworkInterfaces {
		n.Properties = &armcompute.NetworkInterfaceReferenceProperties{DeleteOption: to.Ptr(armcompute.DeleteOptionsDelete)}
	}
}

// createVM creates VM name in testRG and waits for the operation, with the
// poller's default frequency (the simulator's Retry-After-Ms paces it).
func createVM(t *testing.T, c azClients, name string, vm armcompute.VirtualMachine) (armcompute.VirtualMachine, error) {
	t.Helper()
	ctx := testCtx(t)
	p, err := c.vms.BeginCreateOrUpdate(ctx, testRG, name, vm, nil)
	if err != nil {
		return armcompute.VirtualMachine{}, err
	}
	res, err := p.PollUntilDone(ctx, nil)
	return res.VirtualMachine, err
}

func deleteVM(t *testing.T, c azClients, name string) {
	t.Helper()
	ctx := testCtx(t)
	p, err := c.vms.BeginDelete(ctx, testRG, name, nil)
	require.NoError(t, err)
	_, err = p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
}

// respErr returns err's *azcore.ResponseError, failing the test if none.
func respErr(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	require.Truef(t, errors.As(err, &re), "want an *azcore.ResponseError, got %v", err)
	return re
}

// requireARMError checks err's status and code, and that the response
// carried ARM's error body.
func requireARMError(t *testing.T, err error, status int, code string) {
	t.Helper()
	re := respErr(t, err)
	assert.Equal(t, code, re.ErrorCode)
	assert.Equal(t, status, re.StatusCode)
	require.NotNil(t, re.RawResponse)
	body, rerr := runtime.Payload(re.RawResponse)
	require.NoError(t, rerr)
	var doc struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(body, &doc), "body %s", body)
	assert.Equal(t, code, doc.Error.Code)
	assert.NotEmpty(t, doc.Error.Message)
}

func vmSnapshot(t *testing.T, a *Azure, name string) AzureVM {
	t.Helper()
	var found *AzureVM
	for _, v := range a.VMs() {
		if v.Name == name {
			found = &v
		}
	}
	require.NotNilf(t, found, "no VM %s", name)
	return *found
}

func TestAzureCreateVM(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{BootDelay: 300 * time.Millisecond})
	ctx := testCtx(t)

	nic := createNIC(t, c, testRG, "vm1-nic")
	require.NotNil(t, nic.Properties)
	assert.Equal(t, nicID(testRG, "vm1-nic"), *nic.ID)
	assert.Equal(t, "10.1.0.4", *nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress)
	assert.Equal(t, armnetwork.ProvisioningStateSucceeded, *nic.Properties.ProvisioningState)
	assert.Equal(t, "10.1.0.5", *createNIC(t, c, testRG, "other-nic").Properties.IPConfigurations[0].Properties.PrivateIPAddress)

	start := time.Now()
	p, err := c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams(testSize, "#cloud-config\nhello", "vm1-nic", inZone("2")), nil)
	require.NoError(t, err)
	assert.False(t, p.Done())

	// While the operation runs the VM is Creating, already booted.
	got, err := c.vms.Get(ctx, testRG, "vm1", nil)
	require.NoError(t, err)
	assert.Equal(t, psCreating, *got.Properties.ProvisioningState)

	res, err := p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	assert.Less(t, elapsed, 5*time.Second, "Retry-After-Ms should pace the poller, not its 30s default")
	vm := res.VirtualMachine
	assert.Equal(t, psSucceeded, *vm.Properties.ProvisioningState)
	assert.Equal(t, "/subscriptions/"+testSub+"/resourceGroups/"+testRG+"/providers/Microsoft.Compute/virtualMachines/vm1", *vm.ID)
	assert.Nil(t, vm.Properties.OSProfile.CustomData, "ARM never returns customData")

	require.Equal(t, []azBoot{{"vm1", "#cloud-config\nhello"}}, l.Boots())

	got, err = c.vms.Get(ctx, testRG, "vm1", &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)})
	require.NoError(t, err)
	assert.Equal(t, psSucceeded, *got.Properties.ProvisioningState)
	assert.Equal(t, armcompute.VirtualMachineSizeTypes(testSize), *got.Properties.HardwareProfile.VMSize)
	assert.Equal(t, []*string{to.Ptr("2")}, got.Zones)
	assert.Equal(t, "p1", *got.Tags["msm-pool"])
	assert.Equal(t, "vm1-osdisk", *got.Properties.StorageProfile.OSDisk.Name)
	require.NotNil(t, got.Properties.InstanceView)
	var codes []string
	for _, s := range got.Properties.InstanceView.Statuses {
		codes = append(codes, *s.Code)
	}
	assert.Equal(t, []string{"ProvisioningState/succeeded", "PowerState/running"}, codes)

	// The NIC now has the address the Launcher booted the VM with.
	n, err := c.nics.Get(ctx, testRG, "vm1-nic", nil)
	require.NoError(t, err)
	assert.Equal(t, "10.9.0.1", *n.Properties.IPConfigurations[0].Properties.PrivateIPAddress)
	assert.Equal(t, *vm.ID, *n.Properties.VirtualMachine.ID)

	d, err := c.disks.Get(ctx, testRG, "vm1-osdisk", nil)
	require.NoError(t, err)
	assert.Equal(t, armcompute.DiskStateAttached, *d.Properties.DiskState)
	assert.Equal(t, *vm.ID, *d.ManagedBy)
	assert.Equal(t, []string{"vm1-osdisk"}, a.Disks())

	s := vmSnapshot(t, a, "vm1")
	assert.Equal(t, AzureVM{
		Name: "vm1", ResourceGroup: testRG, Size: testSize, Zone: "2", NIC: "vm1-nic", OSDisk: "vm1-osdisk",
		ProvisioningState: psSucceeded, Tags: map[string]string{"msm-pool": "p1"},
		CustomData: []byte("#cloud-config\nhello"), PrivateIP: "10.9.0.1",
	}, s)
	nics := a.NICs()
	require.Len(t, nics, 2)
	assert.Equal(t, AzureNIC{Name: "vm1-nic", ResourceGroup: testRG, Subnet: testSubnet, PrivateIP: "10.9.0.1",
		Tags: map[string]string{"msm": "yes"}}, nics[0])

	assert.Equal(t, 1, a.Calls("VirtualMachines.BeginCreateOrUpdate"))
	assert.GreaterOrEqual(t, a.Calls("VirtualMachines.BeginCreateOrUpdate.Poll"), 1)
	assert.Equal(t, 2, a.Calls("VirtualMachines.Get"))
	assert.Equal(t, 2, a.Calls("Interfaces.BeginCreateOrUpdate"))
}

func TestAzureIdempotentPut(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{})
	ctx := testCtx(t)
	createNIC(t, c, testRG, "n1")
	params := vmParams(testSize, "data", "n1")
	_, err := createVM(t, c, "vm1", params)
	require.NoError(t, err)

	// The same PUT again completes at once, changing and booting nothing.
	p, err := c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", params, nil)
	require.NoError(t, err)
	assert.True(t, p.Done())
	res, err := p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, psSucceeded, *res.Properties.ProvisioningState)
	assert.Len(t, l.Boots(), 1)

	// A PUT without customData (a GET's body, say) is the same PUT too.
	got, err := c.vms.Get(ctx, testRG, "vm1", nil)
	require.NoError(t, err)
	_, err = createVM(t, c, "vm1", got.VirtualMachine)
	require.NoError(t, err)
	assert.Len(t, l.Boots(), 1)

	// Another size updates the VM, in a long-running operation, without
	// booting it again.
	p, err = c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams("Standard_D4s_v3", "data", "n1"), nil)
	require.NoError(t, err)
	assert.False(t, p.Done())
	assert.Equal(t, psUpdating, vmSnapshot(t, a, "vm1").ProvisioningState)
	res, err = p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, armcompute.VirtualMachineSizeTypes("Standard_D4s_v3"), *res.Properties.HardwareProfile.VMSize)
	assert.Len(t, l.Boots(), 1)
	assert.Equal(t, "Standard_D4s_v3", vmSnapshot(t, a, "vm1").Size)

	// Custom data cannot change.
	_, err = c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams("Standard_D4s_v3", "other", "n1"), nil)
	requireARMError(t, err, http.StatusConflict, "PropertyChangeNotAllowed")

	// Re-PUTs racing each other boot the VM once.
	createNIC(t, c, testRG, "n2")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = createVM(t, c, "vm2", vmParams(testSize, "two", "n2"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, l.Boots(), 2)
	assert.Equal(t, 5+4, a.Calls("VirtualMachines.BeginCreateOrUpdate"))
}

func TestAzureCapacity(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{})
	ctx := testCtx(t)
	createNIC(t, c, testRG, "n1")

	// AllocationFailed: the PUT is accepted, its operation fails.
	a.NoCapacity(testSize, "1", false)
	p, err := c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams(testSize, "d", "n1", inZone("1")), nil)
	require.NoError(t, err)
	_, err = p.PollUntilDone(ctx, nil)
	re := respErr(t, err)
	assert.Equal(t, "AllocationFailed", re.ErrorCode)
	assert.Contains(t, err.Error(), "sufficient capacity")
	assert.Empty(t, l.Boots())
	s := vmSnapshot(t, a, "vm1")
	assert.Equal(t, psFailed, s.ProvisioningState)
	assert.Empty(t, a.Disks())
	got, err := c.vms.Get(ctx, testRG, "vm1", nil)
	require.NoError(t, err)
	assert.Equal(t, psFailed, *got.Properties.ProvisioningState)

	// SkuNotAvailable: the PUT itself fails.
	a.NoCapacity("Standard_D4s_v3", "", true)
	_, err = c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams("Standard_D4s_v3", "d", "n1", inZone("1")), nil)
	requireARMError(t, err, http.StatusConflict, "SkuNotAvailable")

	// Another size succeeds, and boots the failed VM.
	vm, err := createVM(t, c, "vm1", vmParams("Standard_B2s", "d", "n1", inZone("1")))
	require.NoError(t, err)
	assert.Equal(t, psSucceeded, *vm.Properties.ProvisioningState)
	assert.Equal(t, []azBoot{{"vm1", "d"}}, l.Boots())
	assert.Len(t, a.VMs(), 1)

	// Other zones are not affected; restored capacity is available again.
	createNIC(t, c, testRG, "n2")
	_, err = createVM(t, c, "vm2", vmParams(testSize, "d2", "n2", inZone("3")))
	require.NoError(t, err)
	a.RestoreCapacity(testSize, "1")
	a.RestoreCapacity("Standard_D4s_v3", "")
	createNIC(t, c, testRG, "n3")
	_, err = createVM(t, c, "vm3", vmParams("Standard_D4s_v3", "d3", "n3", inZone("1")))
	require.NoError(t, err)
	assert.Len(t, l.Boots(), 3)

	// A resize to a size with no capacity fails and keeps the old size.
	a.NoCapacity("Standard_E8s_v5", "", false)
	_, err = createVM(t, c, "vm3", vmParams("Standard_E8s_v5", "d3", "n3", inZone("1")))
	assert.Equal(t, "AllocationFailed", respErr(t, err).ErrorCode)
	s = vmSnapshot(t, a, "vm3")
	assert.Equal(t, psFailed, s.ProvisioningState)
	assert.Equal(t, "Standard_D4s_v3", s.Size)
	assert.Len(t, l.Boots(), 3)
}

func TestAzureBootFailure(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{})
	createNIC(t, c, testRG, "n1")
	_, err := createVM(t, c, "vm1", vmParams(testSize, "fail", "n1"))
	assert.Equal(t, "OSProvisioningInternalError", respErr(t, err).ErrorCode)
	assert.Len(t, l.Boots(), 1)
	assert.Equal(t, psFailed, vmSnapshot(t, a, "vm1").ProvisioningState)

	deleteVM(t, c, "vm1")
	assert.Empty(t, l.Stops(), "nothing booted, nothing to stop")
}

func TestAzureListPaging(t *testing.T) {
	a, _, c := newAzureSim(t, AzureOptions{BootDelay: 20 * time.Millisecond})
	ctx := testCtx(t)

	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("vm%d", i)
			createNIC(t, c, testRG, name+"-nic")
			_, err := createVM(t, c, name, vmParams(testSize, name, name+"-nic"))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	createNIC(t, c, "other-rg", "x-nic")
	x := vmParams(testSize, "x", "x-nic")
	x.Properties.NetworkProfile.NetworkInterfaces[0].ID = to.Ptr(nicID("other-rg", "x-nic"))
	p, err := c.vms.BeginCreateOrUpdate(ctx, "other-rg", "x", x, nil)
	require.NoError(t, err)
	_, err = p.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	deleteVM(t, c, "vm3")

	var order []string
	for _, v := range a.VMs() {
		if v.ResourceGroup == testRG && !v.Deleted {
			order = append(order, v.Name)
		}
	}
	require.Len(t, order, 4)

	list := func() (names []string, pages int) {
		pager := c.vms.NewListPager(testRG, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			require.NoError(t, err)
			pages++
			for _, vm := range page.Value {
				names = append(names, *vm.Name)
			}
		}
		return names, pages
	}
	names, pages := list()
	assert.Equal(t, order, names)
	assert.Equal(t, 2, pages)

	// An abandoned listing does not disturb the next, nor do concurrent ones.
	pager := c.vms.NewListPager(testRG, nil)
	_, err = pager.NextPage(ctx)
	require.NoError(t, err)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names, pages := list()
			assert.Equal(t, order, names)
			assert.Equal(t, 2, pages)
		}()
	}
	wg.Wait()

	// An empty group lists as one empty page.
	pager = c.vms.NewListPager("empty-rg", nil)
	page, err := pager.NextPage(ctx)
	require.NoError(t, err)
	assert.Empty(t, page.Value)
	assert.False(t, pager.More())
}

func TestAzureDelete(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{})
	ctx := testCtx(t)

	createNIC(t, c, testRG, "n1")
	_, err := createVM(t, c, "vm1", vmParams(testSize, "d1", "n1", deleteWithVM))
	require.NoError(t, err)
	createNIC(t, c, testRG, "n2")
	_, err = createVM(t, c, "vm2", vmParams(testSize, "d2", "n2"))
	require.NoError(t, err)

	// In use: the NIC and the disk cannot go before their VM.
	p, err := c.nics.BeginDelete(ctx, testRG, "n2", nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, nil)
	}
	requireARMError(t, err, http.StatusBadRequest, "NicInUse")
	_, err = c.disks.BeginDelete(ctx, testRG, "vm2-osdisk", nil)
	requireARMError(t, err, http.StatusConflict, "OperationNotAllowed")

	dp, err := c.vms.BeginDelete(ctx, testRG, "vm1", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"vm1"}, l.Stops(), "Stop is called as the delete begins")
	got, err := c.vms.Get(ctx, testRG, "vm1", nil)
	require.NoError(t, err)
	assert.Equal(t, psDeleting, *got.Properties.ProvisioningState)
	_, err = c.vms.BeginCreateOrUpdate(ctx, testRG, "vm1", vmParams(testSize, "d1", "n1", deleteWithVM), nil)
	requireARMError(t, err, http.StatusConflict, "OperationNotAllowed")
	_, err = dp.PollUntilDone(ctx, nil)
	require.NoError(t, err)

	_, err = c.vms.Get(ctx, testRG, "vm1", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	_, err = c.disks.Get(ctx, testRG, "vm1-osdisk", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	_, err = c.nics.Get(ctx, testRG, "n1", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	s := vmSnapshot(t, a, "vm1")
	assert.True(t, s.Deleted)
	assert.Equal(t, psDeleted, s.ProvisioningState)
	assert.True(t, a.NICs()[0].Deleted)
	assert.Equal(t, []string{"vm2-osdisk"}, a.Disks())

	// Without delete options the disk and NIC stay, detached.
	deleteVM(t, c, "vm2")
	assert.Equal(t, []string{"vm1", "vm2"}, l.Stops())
	n, err := c.nics.Get(ctx, testRG, "n2", nil)
	require.NoError(t, err)
	assert.Nil(t, n.Properties.VirtualMachine)
	d, err := c.disks.Get(ctx, testRG, "vm2-osdisk", nil)
	require.NoError(t, err)
	assert.Equal(t, armcompute.DiskStateUnattached, *d.Properties.DiskState)
	assert.Nil(t, d.ManagedBy)

	np, err := c.nics.BeginDelete(ctx, testRG, "n2", nil)
	require.NoError(t, err)
	_, err = np.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	ddp, err := c.disks.BeginDelete(ctx, testRG, "vm2-osdisk", nil)
	require.NoError(t, err)
	_, err = ddp.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, a.Disks())

	// Deleting what does not exist succeeds, as ARM's 204 does.
	deleteVM(t, c, "vm1")
	deleteVM(t, c, "never")
	np, err = c.nics.BeginDelete(ctx, testRG, "n2", nil)
	require.NoError(t, err)
	_, err = np.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	ddp, err = c.disks.BeginDelete(ctx, testRG, "never-osdisk", nil)
	require.NoError(t, err)
	_, err = ddp.PollUntilDone(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, l.Stops(), 2)

	// A deleted VM's name can be used again: a new VM, booted anew.
	createNIC(t, c, testRG, "n1")
	_, err = createVM(t, c, "vm1", vmParams(testSize, "again", "n1"))
	require.NoError(t, err)
	assert.Len(t, l.Boots(), 3)
	vms := a.VMs()
	require.Len(t, vms, 3)
	assert.True(t, vms[0].Deleted)
	assert.False(t, vms[2].Deleted)
	assert.Equal(t, "again", string(vms[2].CustomData))
}

func TestAzureErrors(t *testing.T) {
	a, l, c := newAzureSim(t, AzureOptions{})
	ctx := testCtx(t)
	createNIC(t, c, testRG, "n1")

	begin := func(vm armcompute.VirtualMachine) error {
		_, err := c.vms.BeginCreateOrUpdate(ctx, testRG, "bad", vm, nil)
		return err
	}
	requireARMError(t, begin(vmParams(testSize, "d", "missing-nic")), http.StatusBadRequest, "NotFound")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.OSProfile.CustomData = to.Ptr("not base64!")
	})), http.StatusBadRequest, "InvalidParameter")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.OSProfile.CustomData = nil
	})), http.StatusBadRequest, "InvalidParameter")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.HardwareProfile = nil
	})), http.StatusBadRequest, "InvalidParameter")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.StorageProfile.ImageReference = nil
	})), http.StatusBadRequest, "InvalidParameter")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.NetworkProfile = nil
	})), http.StatusBadRequest, "InvalidParameter")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Properties.NetworkProfile.NetworkInterfaces[0].ID = to.Ptr("n1")
	})), http.StatusBadRequest, "LinkedInvalidPropertyId")
	requireARMError(t, begin(vmParams(testSize, "d", "n1", func(vm *armcompute.VirtualMachine) {
		vm.Location = to.Ptr("eastus")
	})), http.StatusBadRequest, "LocationNotAvailableForResourceType")
	assert.Empty(t, l.Boots())
	assert.Empty(t, a.VMs())

	// A NIC attached to one VM cannot serve another.
	_, err := createVM(t, c, "vm1", vmParams(testSize, "d", "n1"))
	require.NoError(t, err)
	requireARMError(t, begin(vmParams(testSize, "d", "n1")), http.StatusBadRequest, "NicInUse")

	_, err = c.vms.Get(ctx, testRG, "nope", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	_, err = c.nics.Get(ctx, testRG, "nope", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	_, err = c.disks.Get(ctx, testRG, "nope", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")

	nic := nicParams()
	nic.Properties.IPConfigurations[0].Properties.Subnet = nil
	_, err = c.nics.BeginCreateOrUpdate(ctx, testRG, "n2", nic, nil)
	requireARMError(t, err, http.StatusBadRequest, "InvalidRequestFormat")

	other, err := armcompute.NewVirtualMachinesClient("11111111-1111-1111-1111-111111111111", &azfake.TokenCredential{}, a.ClientOptions())
	require.NoError(t, err)
	_, err = other.Get(ctx, testRG, "vm1", nil)
	requireARMError(t, err, http.StatusNotFound, "SubscriptionNotFound")

	// What the simulator does not do fails plainly, without retries.
	_, err = c.vms.BeginStart(ctx, testRG, "vm1", nil)
	requireARMError(t, err, http.StatusNotImplemented, "NotImplemented")
}

func TestAzureSeparateTransports(t *testing.T) {
	l := &azLauncher{}
	a := NewAzure(l, AzureOptions{BootDelay: 10 * time.Millisecond})
	defer a.Close()
	cred := &azfake.TokenCredential{}
	vms, err := armcompute.NewVirtualMachinesClient(testSub, cred, &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: a.ComputeTransport()}})
	require.NoError(t, err)
	nics, err := armnetwork.NewInterfacesClient(testSub, cred, &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: a.NetworkTransport()}})
	require.NoError(t, err)
	c := azClients{vms: vms, nics: nics}
	createNIC(t, c, testRG, "n1")
	_, err = createVM(t, c, "vm1", vmParams(testSize, "d", "n1"))
	require.NoError(t, err)
	assert.Len(t, l.Boots(), 1)
}

func TestAzureCloseStopsVMs(t *testing.T) {
	l := &azLauncher{}
	a := NewAzure(l, AzureOptions{})
	c := newAzClients(t, &azfake.TokenCredential{}, a.ClientOptions())
	for _, name := range []string{"vm1", "vm2", "vm3"} {
		createNIC(t, c, testRG, name)
		_, err := createVM(t, c, name, vmParams(testSize, name, name))
		require.NoError(t, err)
	}
	deleteVM(t, c, "vm2")
	a.Close()
	a.Close()
	assert.ElementsMatch(t, []string{"vm1", "vm2", "vm3"}, l.Stops())
	_, err := c.vms.Get(testCtx(t), testRG, "vm1", nil)
	assert.ErrorIs(t, err, errAzureClosed)
}

// TestAzureServe drives the HTTPS bridge as another process would: the
// real clients with a cloud configuration pointing at it, and azidentity's
// App Service managed identity getting tokens from its /msi/token.
func TestAzureServe(t *testing.T) {
	l := &azLauncher{}
	a := NewAzure(l, AzureOptions{})
	defer a.Close()
	url, certPEM := a.Serve()
	require.True(t, strings.HasPrefix(url, "https://"))
	url2, _ := a.Serve()
	assert.Equal(t, url, url2)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(certPEM))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()

	t.Setenv("IDENTITY_ENDPOINT", url+"/msi/token")
	t.Setenv("IDENTITY_HEADER", IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: hc},
	})
	require.NoError(t, err)
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: url + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: url, Audience: url},
			},
		},
		Transport: hc,
	}}
	c := newAzClients(t, cred, opts)
	ctx := testCtx(t)

	nic := createNIC(t, c, testRG, "n1")
	assert.Equal(t, "10.1.0.4", *nic.Properties.IPConfigurations[0].Properties.PrivateIPAddress)
	vm, err := createVM(t, c, "vm1", vmParams(testSize, "over https", "n1", deleteWithVM))
	require.NoError(t, err)
	assert.Equal(t, psSucceeded, *vm.Properties.ProvisioningState)
	assert.Equal(t, []azBoot{{"vm1", "over https"}}, l.Boots())
	n, err := c.nics.Get(ctx, testRG, "n1", nil)
	require.NoError(t, err)
	assert.Equal(t, "10.9.0.1", *n.Properties.IPConfigurations[0].Properties.PrivateIPAddress)

	// Failures cross the bridge with their codes, synchronous or not.
	_, err = c.vms.Get(ctx, testRG, "nope", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	a.NoCapacity("Standard_B1s", "", false)
	createNIC(t, c, testRG, "n2")
	_, err = createVM(t, c, "vm2", vmParams("Standard_B1s", "x", "n2"))
	assert.Equal(t, "AllocationFailed", respErr(t, err).ErrorCode)

	// Paging crosses it too.
	createNIC(t, c, testRG, "n3")
	_, err = createVM(t, c, "vm3", vmParams(testSize, "y", "n3"))
	require.NoError(t, err)
	var names []string
	pager := c.vms.NewListPager(testRG, nil)
	pages := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		require.NoError(t, err)
		pages++
		for _, v := range page.Value {
			names = append(names, *v.Name)
		}
	}
	assert.Equal(t, []string{"vm1", "vm2", "vm3"}, names)
	assert.Equal(t, 2, pages)

	deleteVM(t, c, "vm1")
	assert.Equal(t, []string{"vm1"}, l.Stops())
	_, err = c.nics.Get(ctx, testRG, "n1", nil)
	requireARMError(t, err, http.StatusNotFound, "ResourceNotFound")
	assert.Equal(t, 1, a.Calls("ManagedIdentity.Token"), "the credential caches its token")

	// Without a token from the endpoint, ARM requests are refused.
	get := func(path string, h map[string]string) (*http.Response, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	vmPath := "/subscriptions/" + testSub + "/resourceGroups/" + testRG + "/providers/Microsoft.Compute/virtualMachines/vm3?api-version=2024-07-01"
	resp, body := get(vmPath, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "AuthenticationFailed")
	resp, body = get(vmPath, map[string]string{"Authorization": "Bearer forged"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "InvalidAuthenticationToken")

	// The token endpoint checks the identity header, and its answer works.
	resp, _ = get("/msi/token?api-version=2019-08-01&resource="+url, map[string]string{"X-IDENTITY-HEADER": "wrong"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = get("/msi/token?api-version=2019-08-01&resource="+url, map[string]string{"X-IDENTITY-HEADER": IdentityHeader})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
		Resource    string `json:"resource"`
		TokenType   string `json:"token_type"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tok))
	assert.Equal(t, url, tok.Resource)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.NotEmpty(t, tok.ExpiresOn)
	resp, body = get(vmPath, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"provisioningState":"Succeeded"`)

	// A subscription-level listing crosses it too (the API is inferred
	// from the path: another process's request carries no API name).
	sizes, err := armcompute.NewVirtualMachineSizesClient(testSub, cred, opts)
	require.NoError(t, err)
	spager := sizes.NewListPager("westeurope", nil)
	var offered []string
	for spager.More() {
		page, err := spager.NextPage(ctx)
		require.NoError(t, err)
		for _, s := range page.Value {
			offered = append(offered, *s.Name)
		}
	}
	assert.Equal(t, DefaultAzureSizes, offered)
}

// TestAzureServeChildProcess checks Serve's contract with another process:
// the test binary runs itself as a child that authenticates with
// DefaultAzureCredential (App Service managed identity from IDENTITY_ENDPOINT
// and IDENTITY_HEADER), trusts the server through SSL_CERT_FILE, and creates
// a VM with the real clients.
func TestAzureServeChildProcess(t *testing.T) {
	if url := os.Getenv("CLOUDSIM_AZURE_CHILD_URL"); url != "" {
		azureChild(t, url)
		return
	}
	l := &azLauncher{}
	a := NewAzure(l, AzureOptions{})
	defer a.Close()
	url, certPEM := a.Serve()
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))

	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AZURE_") && !strings.HasPrefix(k, "IDENTITY_") && !strings.HasPrefix(k, "MSI_") &&
			!strings.HasPrefix(k, "IMDS_") && !strings.HasPrefix(k, "SSL_CERT_") {
			env = append(env, kv)
		}
	}
	cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^TestAzureServeChildProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(env,
		"CLOUDSIM_AZURE_CHILD_URL="+url,
		"IDENTITY_ENDPOINT="+url+"/msi/token",
		"IDENTITY_HEADER="+IdentityHeader,
		"SSL_CERT_FILE="+certFile,
	)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
	assert.Equal(t, []azBoot{{"child-vm", "from a child"}}, l.Boots())
	assert.Equal(t, "10.9.0.1", vmSnapshot(t, a, "child-vm").PrivateIP)
	assert.GreaterOrEqual(t, a.Calls("ManagedIdentity.Token"), 1)
}

// azureChild is the child process of TestAzureServeChildProcess.
func azureChild(t *testing.T, url string) {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	require.NoError(t, err)
	c := newAzClients(t, cred, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: url, Audience: url},
		}},
	}})
	createNIC(t, c, testRG, "child-nic")
	vm, err := createVM(t, c, "child-vm", vmParams(testSize, "from a child", "child-nic"))
	require.NoError(t, err)
	require.Equal(t, psSucceeded, *vm.Properties.ProvisioningState)
}
