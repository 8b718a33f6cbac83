// Package azure is the provider of the azure kind: each server is an Azure
// VM (with its network interface and OS disk) created from the catalog's
// image, whose custom data starts `msm node` with the server's name;
// deleting a server deletes the VM, its NIC and its disk. It uses the Azure
// SDK for Go (armcompute, armnetwork) and azidentity's default credential
// (environment, workload identity, managed identity, Azure CLI).
package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v8"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/cloudinit"
)

// Tags msm puts on every VM and NIC it creates.
const (
	TagOwner  = "msm-owner"
	TagServer = "msm-server"
	TagKey    = "msm-key"
)

// capacityCodes say "not this size / zone now": the next one is tried.
var capacityCodes = []string{"AllocationFailed", "ZonalAllocationFailed", "SkuNotAvailable",
	"OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest"}

// Provider creates and deletes the VMs of one Manager.
type Provider struct {
	vms     *armcompute.VirtualMachinesClient
	sizes   *armcompute.VirtualMachineSizesClient
	disks   *armcompute.DisksClient
	nics    *armnetwork.InterfacesClient
	cfg     catalog.Azure
	image   catalog.AzureImage
	boot    catalog.NodeBoot
	manager string
	// Poll is how often a long-running operation is polled.
	Poll time.Duration
}

// New returns the provider of manager with the catalog's azure settings,
// authenticated by azidentity's default credential.
func New(ctx context.Context, m catalog.Manager, manager string) (*Provider, error) {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("no Azure credential (set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, use a managed identity, or `az login`), %w", err)
	}
	opts := &arm.ClientOptions{}
	if e := m.Azure.Endpoint; e != "" {
		opts.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: cloud.AzurePublic.ActiveDirectoryAuthorityHost,
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: e, Audience: e}},
		}
	}
	return NewWithOptions(cred, opts, m, manager)
}

// NewWithOptions returns the provider with a given credential and client
// options (a cloud, a transport).
func NewWithOptions(cred azcore.TokenCredential, opts *arm.ClientOptions, m catalog.Manager, manager string) (*Provider, error) {
	a := m.Azure
	if a.Subscription == "" || a.ResourceGroup == "" || a.Location == "" {
		return nil, errors.New("manager.azure needs subscription, resource_group and location")
	}
	image, err := catalog.ParseAzureImage(a.Image)
	if err != nil {
		return nil, fmt.Errorf("manager.azure.image: %w", err)
	}
	vms, err := armcompute.NewVirtualMachinesClient(a.Subscription, cred, opts)
	if err != nil {
		return nil, err
	}
	disks, err := armcompute.NewDisksClient(a.Subscription, cred, opts)
	if err != nil {
		return nil, err
	}
	sizes, err := armcompute.NewVirtualMachineSizesClient(a.Subscription, cred, opts)
	if err != nil {
		return nil, err
	}
	nics, err := armnetwork.NewInterfacesClient(a.Subscription, cred, opts)
	if err != nil {
		return nil, err
	}
	return &Provider{vms: vms, sizes: sizes, disks: disks, nics: nics, cfg: a, image: image, boot: m.Node, manager: manager, Poll: time.Second}, nil
}

// Check verifies at start that the credential works, the resource group
// can be read, and the location offers the sizes.
func (p *Provider) Check(ctx context.Context) error {
	pager := p.vms.NewListPager(p.cfg.ResourceGroup, nil)
	if _, err := pager.NextPage(ctx); err != nil {
		return fmt.Errorf("listing the VMs of resource group %s in subscription %s (is the credential allowed, does manager.azure.resource_group exist?), %w",
			p.cfg.ResourceGroup, p.cfg.Subscription, err)
	}
	offered := map[string]bool{}
	sizes := p.sizes.NewListPager(p.cfg.Location, nil)
	for sizes.More() {
		page, err := sizes.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing the VM sizes of %s, %w", p.cfg.Location, err)
		}
		for _, s := range page.Value {
			if s != nil {
				offered[strings.ToLower(str(s.Name))] = true
			}
		}
	}
	for _, s := range p.cfg.Sizes {
		if !offered[strings.ToLower(s)] {
			return fmt.Errorf("manager.azure.sizes: %s is not a VM size of %s; check its name (az vm list-sizes -l %s)", s, p.cfg.Location, p.cfg.Location)
		}
	}
	_, err := cloudinit.Node(p.boot, "check", p.manager, cloudinit.Secrets{})
	return err
}

func (p *Provider) poll() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: p.Poll}
}

func nicName(server string) string  { return server + "-nic" }
func diskName(server string) string { return server + "-osdisk" }

// Create creates the VM of server spec.Name, or returns it when it already
// exists for key: the VM name is the idempotency key of Azure's PUT, so a
// retry after a crash updates the VM it made rather than making another.
// Sizes, then zones, are tried in order while they have no capacity.
func (p *Provider) Create(ctx context.Context, key string, spec providers.Spec) (providers.Server, error) {
	if got, err := p.vms.Get(ctx, p.cfg.ResourceGroup, spec.Name, nil); err == nil {
		if tag(got.Tags, TagKey) != key {
			return providers.Server{}, providers.Permanent(fmt.Errorf("VM %s exists in resource group %s but was not made by this launch (key %q); delete it or use another Manager name",
				spec.Name, p.cfg.ResourceGroup, tag(got.Tags, TagKey)))
		}
		if str(got.Properties.ProvisioningState) == "Succeeded" {
			return p.server(ctx, spec.Name, got.VirtualMachine)
		}
	} else if !notFound(err) {
		return providers.Server{}, classify("reading VM "+spec.Name, err)
	}
	customData, err := cloudinit.Node(p.boot, spec.Name, spec.Owner, cloudinit.Secrets{JoinToken: spec.JoinToken, CodecKeys: spec.CodecKeys})
	if err != nil {
		return providers.Server{}, err
	}
	tags := map[string]*string{TagOwner: to.Ptr(spec.Owner), TagServer: to.Ptr(spec.Name), TagKey: to.Ptr(key)}
	nicPoller, err := p.nics.BeginCreateOrUpdate(ctx, p.cfg.ResourceGroup, nicName(spec.Name), armnetwork.Interface{
		Location: to.Ptr(p.cfg.Location), Tags: tags,
		Properties: &armnetwork.InterfacePropertiesFormat{IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{
			Name: to.Ptr("ipconfig1"),
			Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
				Subnet:                    &armnetwork.Subnet{ID: to.Ptr(p.cfg.Subnet)},
				PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
			},
		}}},
	}, nil)
	if err != nil {
		return providers.Server{}, classify("creating the network interface of "+spec.Name, err)
	}
	nic, err := nicPoller.PollUntilDone(ctx, p.poll())
	if err != nil {
		return providers.Server{}, classify("creating the network interface of "+spec.Name, err)
	}
	zones := p.cfg.Zones
	if len(zones) == 0 {
		zones = []string{""}
	}
	var full []string
	for _, size := range p.cfg.Sizes {
		for _, zone := range zones {
			vm := p.vm(spec, size, zone, *nic.ID, customData, tags)
			poller, err := p.vms.BeginCreateOrUpdate(ctx, p.cfg.ResourceGroup, spec.Name, vm, nil)
			var done armcompute.VirtualMachinesClientCreateOrUpdateResponse
			if err == nil {
				done, err = poller.PollUntilDone(ctx, p.poll())
			}
			if err != nil {
				if c := code(err); slices.Contains(capacityCodes, c) {
					full = append(full, fmt.Sprintf("%s in %s: %s", size, zoneName(zone), c))
					continue
				}
				return providers.Server{}, classify("creating VM "+spec.Name, err)
			}
			return p.server(ctx, spec.Name, done.VirtualMachine)
		}
	}
	// Nothing is left behind: the failed VM and its NIC go.
	if err := p.Delete(ctx, spec.Name); err != nil {
		return providers.Server{}, fmt.Errorf("removing the VM left by failed allocations of %s, %w", spec.Name, err)
	}
	return providers.Server{}, fmt.Errorf("%w: no configured size and zone has room (%s); add sizes or zones under manager.azure",
		providers.ErrNoCapacity, strings.Join(full, "; "))
}

func zoneName(z string) string {
	if z == "" {
		return "no zone"
	}
	return "zone " + z
}

func (p *Provider) vm(spec providers.Spec, size, zone, nicID, customData string, tags map[string]*string) armcompute.VirtualMachine {
	img := &armcompute.ImageReference{}
	if p.image.ID != "" {
		img.ID = to.Ptr(p.image.ID)
	} else {
		img.Publisher, img.Offer, img.SKU, img.Version = to.Ptr(p.image.Publisher), to.Ptr(p.image.Offer), to.Ptr(p.image.SKU), to.Ptr(p.image.Version)
	}
	vm := armcompute.VirtualMachine{
		Location: to.Ptr(p.cfg.Location),
		Tags:     tags,
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(size))},
			StorageProfile: &armcompute.StorageProfile{
				ImageReference: img,
				OSDisk: &armcompute.OSDisk{
					Name:         to.Ptr(diskName(spec.Name)),
					CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
					DeleteOption: to.Ptr(armcompute.DiskDeleteOptionTypesDelete),
				},
			},
			OSProfile: &armcompute.OSProfile{
				ComputerName:  to.Ptr(spec.Name),
				AdminUsername: to.Ptr(p.cfg.AdminUser),
				CustomData:    to.Ptr(base64.StdEncoding.EncodeToString([]byte(customData))),
				LinuxConfiguration: &armcompute.LinuxConfiguration{
					DisablePasswordAuthentication: to.Ptr(true),
					SSH: &armcompute.SSHConfiguration{PublicKeys: []*armcompute.SSHPublicKey{{
						Path:    to.Ptr("/home/" + p.cfg.AdminUser + "/.ssh/authorized_keys"),
						KeyData: to.Ptr(p.cfg.SSHKey),
					}}},
				},
			},
			NetworkProfile: &armcompute.NetworkProfile{NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{
				ID:         to.Ptr(nicID),
				Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to.Ptr(true), DeleteOption: to.Ptr(armcompute.DeleteOptionsDelete)},
			}}},
		},
	}
	if zone != "" {
		vm.Zones = []*string{to.Ptr(zone)}
	}
	return vm
}

// server is a VM as a server: its address is its NIC's private IP.
func (p *Provider) server(ctx context.Context, name string, vm armcompute.VirtualMachine) (providers.Server, error) {
	nic, err := p.nics.Get(ctx, p.cfg.ResourceGroup, nicName(name), nil)
	if err != nil {
		return providers.Server{}, classify("reading the network interface of "+name, err)
	}
	var ip string
	if props := nic.Properties; props != nil && len(props.IPConfigurations) > 0 && props.IPConfigurations[0].Properties != nil {
		ip = str(props.IPConfigurations[0].Properties.PrivateIPAddress)
	}
	return providers.Server{ID: name, Address: ip, Owner: tag(vm.Tags, TagOwner)}, nil
}

// Get returns the VM of server id, if it is this Manager's and usable.
func (p *Provider) Get(ctx context.Context, id string) (providers.Server, error) {
	got, err := p.vms.Get(ctx, p.cfg.ResourceGroup, id, nil)
	if notFound(err) {
		return providers.Server{}, fmt.Errorf("%w: no VM %s in resource group %s", providers.ErrNotFound, id, p.cfg.ResourceGroup)
	}
	if err != nil {
		return providers.Server{}, classify("reading VM "+id, err)
	}
	if tag(got.Tags, TagOwner) != p.manager || !usable(got.VirtualMachine) {
		return providers.Server{}, fmt.Errorf("%w: VM %s is not a live server of %s", providers.ErrNotFound, id, p.manager)
	}
	return p.server(ctx, id, got.VirtualMachine)
}

func usable(vm armcompute.VirtualMachine) bool {
	s := ""
	if vm.Properties != nil {
		s = str(vm.Properties.ProvisioningState)
	}
	return s == "Succeeded" || s == "Creating" || s == "Updating"
}

// List returns the live VMs of owner in the resource group.
func (p *Provider) List(ctx context.Context, owner string) ([]providers.Server, error) {
	out := []providers.Server{}
	pager := p.vms.NewListPager(p.cfg.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify("listing VMs", err)
		}
		for _, vm := range page.Value {
			if vm == nil || tag(vm.Tags, TagOwner) != owner || !usable(*vm) {
				continue
			}
			s, err := p.server(ctx, str(vm.Name), *vm)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b providers.Server) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete deletes the VM of server id, then its NIC and its OS disk; what
// is already gone counts as deleted.
func (p *Provider) Delete(ctx context.Context, id string) error {
	if got, err := p.vms.Get(ctx, p.cfg.ResourceGroup, id, nil); err == nil && tag(got.Tags, TagOwner) != p.manager {
		return providers.Permanent(fmt.Errorf("VM %s is not %s's (owner %q); it is left alone", id, p.manager, tag(got.Tags, TagOwner)))
	}
	rg := p.cfg.ResourceGroup
	if err := gone(ctx, "deleting VM "+id, p.poll(), func() (*runtime.Poller[armcompute.VirtualMachinesClientDeleteResponse], error) {
		return p.vms.BeginDelete(ctx, rg, id, nil)
	}); err != nil {
		return err
	}
	if err := gone(ctx, "deleting the network interface of "+id, p.poll(), func() (*runtime.Poller[armnetwork.InterfacesClientDeleteResponse], error) {
		return p.nics.BeginDelete(ctx, rg, nicName(id), nil)
	}); err != nil {
		return err
	}
	return gone(ctx, "deleting the OS disk of "+id, p.poll(), func() (*runtime.Poller[armcompute.DisksClientDeleteResponse], error) {
		return p.disks.BeginDelete(ctx, rg, diskName(id), nil)
	})
}

// gone runs a delete to its end; a resource already gone counts as deleted.
func gone[T any](ctx context.Context, what string, poll *runtime.PollUntilDoneOptions, begin func() (*runtime.Poller[T], error)) error {
	poller, err := begin()
	if err == nil {
		_, err = poller.PollUntilDone(ctx, poll)
	}
	if err != nil && !notFound(err) {
		return classify(what, err)
	}
	return nil
}

func tag(tags map[string]*string, key string) string { return str(tags[key]) }

func code(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func notFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.ErrorCode == "ResourceNotFound" || re.ErrorCode == "NotFound")
}

// classify marks the errors that retrying cannot fix as permanent, naming
// the setting to change.
func classify(what string, err error) error {
	c := code(err)
	var re *azcore.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.StatusCode
	}
	switch {
	case strings.Contains(c, "Image") || c == "InvalidImageReference":
		return providers.Permanent(fmt.Errorf("%s: manager.azure.image cannot be used, %w", what, err))
	case strings.Contains(c, "Subnet") || c == "InvalidResourceReference":
		return providers.Permanent(fmt.Errorf("%s: manager.azure.subnet cannot be used, %w", what, err))
	case c == "ResourceGroupNotFound":
		return providers.Permanent(fmt.Errorf("%s: manager.azure.resource_group does not exist, %w", what, err))
	case c == "AuthorizationFailed" || c == "InvalidParameter" || c == "InvalidAuthenticationToken" || status == http.StatusForbidden:
		return providers.Permanent(fmt.Errorf("%s, %w", what, err))
	}
	return fmt.Errorf("%s, %w", what, err)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
