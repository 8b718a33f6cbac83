package cloudsim

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v8"
	networkfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v8/fake"
)

// This file simulates the part of Azure Resource Manager that msm's azure
// provider uses: virtual machines and disks (Microsoft.Compute) and network
// interfaces (Microsoft.Network).
//
// The simulator is built on the SDK's own fake servers: the handlers below
// fill in armcompute/v8/fake.VirtualMachinesServer, DisksServer and
// armnetwork/v8/fake.InterfacesServer, and the fake ServerFactoryTransports
// decode the real clients' requests for them and encode their answers. A
// thin layer in front of the fakes (Azure.roundTrip) adds what they lack to
// behave like ARM over time and across processes:
//
//   - Long-running operations. A fake PollerResponder is a fixed script, so
//     the handlers only script the first response (201/202 with the fake
//     poller's "Fake-Poller-Status: InProgress", or an immediate terminal
//     one), and the layer answers the poller's status requests
//     (<resource>/get/fake/status) from the simulator's state: InProgress
//     with a Retry-After-Ms header until the operation's time is up, then
//     Succeeded (with the resource) or Failed (with an ARM error body, whose
//     code becomes the azcore.ResponseError's ErrorCode, as for a failed
//     Azure-AsyncOperation).
//   - Errors. Handlers fail with an *armError; the layer turns it into an
//     HTTP response with ARM's body {"error":{"code":…,"message":…}}, so the
//     clients build their *azcore.ResponseError from a real response.
//   - Paging. Each listing gets its own path prefix so that the fakes'
//     per-path pager state is not shared by concurrent or abandoned
//     listings.
//   - The HTTPS bridge (Serve), where no API name travels with the request:
//     the layer infers it from the method and path, as the SDK's client
//     would have set it.

// IdentityHeader is the secret that the managed-identity token endpoint of
// Azure.Serve expects in the X-IDENTITY-HEADER request header: the value of
// IDENTITY_HEADER for a process that gets its tokens there.
const IdentityHeader = "msm-test-identity"

const (
	defaultAzureSubscription = "00000000-0000-0000-0000-000000000000"
	defaultAzureLocation     = "westeurope"
	defaultAzureBootDelay    = 100 * time.Millisecond
	defaultAzureSubnet       = "10.1.0."
	// azureFirstHost is the first host number given out in a subnet: Azure
	// reserves .0 to .3.
	azureFirstHost = 4
	// azurePageSize is how many VMs a page of VirtualMachines.List holds,
	// small so that every multi-VM listing pages.
	azurePageSize = 2
	// azureMaxCustomData is ARM's limit on osProfile.customData, in base64
	// characters.
	azureMaxCustomData = 87380
	azureMaxBody       = 4 << 20
	azureTokenLifetime = time.Hour
	msiAPIVersion      = "2019-08-01"

	// The Core-Fake-Poller protocol of azcore's fake pollers.
	fakePollerStatus = "Fake-Poller-Status"
	fakePollSuffix   = "/get/fake/status"
	fakePagePrefix   = "/fake_page_"
	// listingPrefix starts the path of a listing's pages (see withListing).
	listingPrefix = "/cloudsim-listing/"
)

// Provisioning states of simulated VMs. ARM has no "Deleted": a deleted
// VM is gone, and only the simulator's snapshot keeps it.
const (
	psCreating  = "Creating"
	psUpdating  = "Updating"
	psSucceeded = "Succeeded"
	psFailed    = "Failed"
	psDeleting  = "Deleting"
	psDeleted   = "Deleted"
)

// The API names the SDK's clients put in the request context
// (runtime.CtxAPINameKey), which the fake transports dispatch on.
const (
	apiVMCreate   = "VirtualMachinesClient.BeginCreateOrUpdate"
	apiVMGet      = "VirtualMachinesClient.Get"
	apiVMDelete   = "VirtualMachinesClient.BeginDelete"
	apiVMList     = "VirtualMachinesClient.NewListPager"
	apiDiskCreate = "DisksClient.BeginCreateOrUpdate"
	apiDiskGet    = "DisksClient.Get"
	apiDiskDelete = "DisksClient.BeginDelete"
	apiNICCreate  = "InterfacesClient.BeginCreateOrUpdate"
	apiNICGet     = "InterfacesClient.Get"
	apiNICDelete  = "InterfacesClient.BeginDelete"
	apiNICList    = "InterfacesClient.NewListPager"
)

// AzureOptions configures a simulated Azure. The zero value is usable.
type AzureOptions struct {
	// Subscription is the only subscription that exists (default
	// "00000000-0000-0000-0000-000000000000"); requests for another fail
	// with SubscriptionNotFound.
	Subscription string
	// Location is the only region (default "westeurope"): resources must
	// be created there, or fail with LocationNotAvailableForResourceType.
	Location string
	// BootDelay is how long a VM create's long-running operation takes
	// (default 100ms), and a VM update's or delete's too.
	BootDelay time.Duration
	// Subnet is the prefix of the private addresses given to network
	// interfaces before their VM boots (default "10.1.0."); host numbers
	// start at 4.
	Subnet string
	// Sizes are the VM sizes the location offers, as listed by
	// VirtualMachineSizes (default DefaultAzureSizes).
	Sizes []string
}

// DefaultAzureSizes are the sizes a simulated location offers by default.
var DefaultAzureSizes = []string{"Standard_B2s", "Standard_D2s_v5", "Standard_D2as_v5", "Standard_D4s_v5", "Standard_F2s_v2"}

// AzureVM is a snapshot of a simulated virtual machine.
type AzureVM struct {
	Name, ResourceGroup string
	Size                string // hardwareProfile.vmSize
	Zone                string // first of the VM's zones, "" if none
	NIC                 string // name of its first network interface
	OSDisk              string // name of its OS disk
	// ProvisioningState is Creating, Updating, Succeeded, Failed, Deleting
	// or (for a deleted VM) Deleted.
	ProvisioningState string
	Tags              map[string]string
	CustomData        []byte // base64-decoded
	// PrivateIP is what the Launcher's Boot returned, "" if it has not.
	PrivateIP string
	Deleted   bool
}

// AzureNIC is a snapshot of a simulated network interface.
type AzureNIC struct {
	Name, ResourceGroup string
	Subnet              string // the subnet ID of its first IP configuration
	PrivateIP           string
	Tags                map[string]string
	Deleted             bool
}

// Azure is a simulated Azure Resource Manager for virtual machines, their
// OS disks and network interfaces. Its VMs are booted and stopped by a
// Launcher. The real armcompute and armnetwork clients reach it in process
// through ClientOptions (or ComputeTransport and NetworkTransport), and from
// other processes through the HTTPS server that Serve starts.
//
// It is safe for concurrent use.
type Azure struct {
	launcher Launcher
	sub      string
	location string
	delay    time.Duration
	subnet   string
	sizes    []string

	compute *computefake.ServerFactoryTransport
	network *networkfake.ServerFactoryTransport

	boots sync.WaitGroup // Boot calls in progress

	mu         sync.Mutex
	closed     bool
	srv        *httptest.Server
	vms        []*azVM          // in creation order, deleted ones included
	vmByKey    map[string]*azVM // latest VM of each name, deleted or not
	nics       []*azNIC
	nicByKey   map[string]*azNIC // live NICs
	disks      []*azDisk
	diskByKey  map[string]*azDisk // live disks
	nextHost   int
	noCapacity []azCapacityRule
	calls      map[string]int
	listings   int
	tokens     map[string]time.Time // issued access token → expiry
	pathLocks  map[string]*sync.Mutex
}

// azVM is the simulator's record of a VM; guarded by Azure.mu.
type azVM struct {
	AzureVM
	key     string
	spec    *vmSpec
	model   armcompute.VirtualMachine // the accepted PUT body, secrets removed
	vmID    string
	created time.Time
	booted  bool // Boot succeeded
	stopped bool // Stop was called
	// bootDone is closed when the VM's Boot call returns; nil if Boot was
	// never called.
	bootDone chan struct{}
	op       *azOp
	putOp    *azOp // latest create or update
	delOp    *azOp // latest delete
}

// azOp is a long-running operation on a VM; it completes when until has
// passed.
type azOp struct {
	kind  string // "create", "update" or "delete"
	until time.Time
	err   *armError // the operation fails with err
	done  bool
	// revert is what an update that fails restores.
	revert *azRevert
}

type azRevert struct {
	spec  *vmSpec
	model armcompute.VirtualMachine
}

type azNIC struct {
	AzureNIC
	key   string
	model armnetwork.Interface // the accepted PUT body
	vm    string               // key of the VM it is attached to, "" if none
	etag  string
}

type azDisk struct {
	name, rg, key string
	vm            string // key of the VM it is attached to, "" if none
	zones         []string
	created       time.Time
}

type azCapacityRule struct {
	size, zone string
	sku        bool
}

// vmSpec is what the simulator takes from a VM's PUT body.
type vmSpec struct {
	name          string
	size          string
	zones         []string
	tags          map[string]string
	customData    []byte
	hasCustomData bool
	image         string
	osDisk        string
	osDiskDelete  bool
	nics          []vmNICRef
	adminUser     string
	computerName  string
}

type vmNICRef struct {
	key, name, rg string
	del           bool
}

// NewAzure returns a simulated Azure whose VMs l boots and stops. Close it
// when done.
func NewAzure(l Launcher, o AzureOptions) *Azure {
	a := &Azure{
		launcher:  l,
		sub:       o.Subscription,
		location:  o.Location,
		delay:     o.BootDelay,
		subnet:    o.Subnet,
		vmByKey:   map[string]*azVM{},
		nicByKey:  map[string]*azNIC{},
		diskByKey: map[string]*azDisk{},
		nextHost:  azureFirstHost,
		calls:     map[string]int{},
		tokens:    map[string]time.Time{},
		pathLocks: map[string]*sync.Mutex{},
	}
	if a.sub == "" {
		a.sub = defaultAzureSubscription
	}
	if a.location == "" {
		a.location = defaultAzureLocation
	}
	if a.delay <= 0 {
		a.delay = defaultAzureBootDelay
	}
	if a.subnet == "" {
		a.subnet = defaultAzureSubnet
	}
	a.sizes = o.Sizes
	if len(a.sizes) == 0 {
		a.sizes = DefaultAzureSizes
	}
	a.compute = computefake.NewServerFactoryTransport(&computefake.ServerFactory{
		VirtualMachinesServer: computefake.VirtualMachinesServer{
			BeginCreateOrUpdate: a.vmCreateOrUpdate,
			Get:                 a.vmGet,
			BeginDelete:         a.vmDelete,
			NewListPager:        a.vmList,
		},
		DisksServer: computefake.DisksServer{
			Get:         a.diskGet,
			BeginDelete: a.diskDelete,
		},
		VirtualMachineSizesServer: computefake.VirtualMachineSizesServer{NewListPager: a.sizeList},
	})
	a.network = networkfake.NewServerFactoryTransport(&networkfake.ServerFactory{
		InterfacesServer: networkfake.InterfacesServer{
			BeginCreateOrUpdate: a.nicCreateOrUpdate,
			Get:                 a.nicGet,
			BeginDelete:         a.nicDelete,
		},
	})
	return a
}

// ComputeTransport is the transport of armcompute clients: the armcompute
// fake ServerFactoryTransport (VirtualMachinesServer and DisksServer), behind
// the simulator's operation, paging and error layer. It serves only
// Microsoft.Compute requests.
func (a *Azure) ComputeTransport() policy.Transporter {
	return &azureTransport{a: a, only: nsCompute}
}

// NetworkTransport is the transport of armnetwork clients: the armnetwork
// fake ServerFactoryTransport (InterfacesServer), behind the simulator's
// layer. It serves only Microsoft.Network requests.
func (a *Azure) NetworkTransport() policy.Transporter {
	return &azureTransport{a: a, only: nsNetwork}
}

// ClientOptions returns client options for in-process use by armcompute
// and armnetwork clients alike: their transport routes each request by its
// path, Microsoft.Compute to the compute fakes and Microsoft.Network to the
// network fakes. Use it with a credential such as azcore/fake's
// TokenCredential.
func (a *Azure) ClientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: &azureTransport{a: a}}}
}

// NoCapacity makes creating (or resizing to) a VM of size in zone fail,
// until RestoreCapacity(size, zone); "" matches any size or zone. With sku
// the PUT itself fails, 409 SkuNotAvailable; without, the PUT is accepted
// and its long-running operation fails with AllocationFailed, leaving the
// VM in provisioning state Failed with nothing booted, as on Azure.
func (a *Azure) NoCapacity(size, zone string, sku bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.noCapacity = slices.DeleteFunc(a.noCapacity, func(r azCapacityRule) bool {
		return r.size == size && r.zone == zone
	})
	a.noCapacity = append(a.noCapacity, azCapacityRule{size, zone, sku})
}

// RestoreCapacity undoes NoCapacity(size, zone, …).
func (a *Azure) RestoreCapacity(size, zone string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.noCapacity = slices.DeleteFunc(a.noCapacity, func(r azCapacityRule) bool {
		return r.size == size && r.zone == zone
	})
}

// VMs returns a snapshot of every VM in creation order, deleted ones
// included (with Deleted set).
func (a *Azure) VMs() []AzureVM {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	out := make([]AzureVM, 0, len(a.vms))
	for _, v := range a.vms {
		s := v.AzureVM
		s.Tags = maps.Clone(v.Tags)
		s.CustomData = slices.Clone(v.CustomData)
		out = append(out, s)
	}
	return out
}

// NICs returns a snapshot of every network interface in creation order,
// deleted ones included (with Deleted set).
func (a *Azure) NICs() []AzureNIC {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	out := make([]AzureNIC, 0, len(a.nics))
	for _, n := range a.nics {
		s := n.AzureNIC
		s.Tags = maps.Clone(n.Tags)
		out = append(out, s)
	}
	return out
}

// Disks returns the names of the OS disks that exist, in creation order.
func (a *Azure) Disks() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	var out []string
	for _, d := range a.disks {
		if a.diskByKey[d.key] == d {
			out = append(out, d.name)
		}
	}
	return out
}

// Calls returns how many requests the simulator received for op, named
// like the client method without "Client": "VirtualMachines.BeginCreateOrUpdate",
// "VirtualMachines.Get", "VirtualMachines.BeginDelete",
// "VirtualMachines.NewListPager" (one per page), "Disks.Get",
// "Disks.BeginDelete", "Interfaces.BeginCreateOrUpdate", "Interfaces.Get",
// "Interfaces.BeginDelete". The status requests of a long-running operation
// count under its name plus ".Poll" ("VirtualMachines.BeginDelete.Poll"),
// and token requests under "ManagedIdentity.Token".
func (a *Azure) Calls(op string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

// Serve starts (once) an HTTPS server on the loopback interface that
// answers ARM requests like ClientOptions' transport does, for clients in
// other processes, and an App Service managed-identity token endpoint at
// /msi/token (GET ?resource=…&api-version=2019-08-01 with header
// X-IDENTITY-HEADER: IdentityHeader). ARM requests must carry a bearer token
// from that endpoint.
//
// A process reaches it with IDENTITY_ENDPOINT=<url>/msi/token and
// IDENTITY_HEADER=<IdentityHeader> in its environment, so that azidentity's
// managed identity (or DefaultAzureCredential) gets its tokens there, and
// with arm.ClientOptions whose Cloud's ResourceManager endpoint and
// audience are url. It must trust certPEM, the PEM of the server's
// self-signed certificate (e.g. through SSL_CERT_FILE).
//
// Serve panics if a is closed.
func (a *Azure) Serve() (url string, certPEM []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		panic("cloudsim: Azure.Serve called after Close")
	}
	if a.srv == nil {
		a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serveHTTP))
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	return a.srv.URL, certPEM
}

// Close stops the HTTPS server if any (waiting for the requests in
// flight), waits for Boot calls in progress, and then Stops every VM booted
// and not stopped yet. Requests made after Close fail. Further calls do
// nothing.
func (a *Azure) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	srv := a.srv
	a.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	a.boots.Wait()

	var stop []string
	a.mu.Lock()
	for _, v := range a.vms {
		if v.booted && !v.stopped {
			v.stopped = true
			stop = append(stop, v.Name)
		}
	}
	a.mu.Unlock()
	for _, name := range stop {
		_ = a.launcher.Stop(name) // nothing left to report it to
	}
}

// errAzureClosed is the transport error of requests made after Close.
var errAzureClosed error = azNonRetriable{errors.New("cloudsim: Azure simulator is closed")}

// azNonRetriable marks a transport error as one that azcore's retry policy
// must not retry (see errorinfo.NonRetriable).
type azNonRetriable struct{ error }

func (azNonRetriable) NonRetriable() {}

func (e azNonRetriable) Unwrap() error { return e.error }

// ---------------------------------------------------------------------------
// Errors

// armError is an ARM error response: an HTTP status and the body
// {"error":{"code":…,"message":…,"target":…}}.
type armError struct {
	status  int
	code    string
	message string
	target  string
}

func (e *armError) Error() string { return e.code + ": " + e.message }

func newARMError(status int, code, format string, args ...any) *armError {
	return &armError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *armError) withTarget(t string) *armError {
	e.target = t
	return e
}

type armErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func (e *armError) detail() armErrorDetail {
	return armErrorDetail{Code: e.code, Message: e.message, Target: e.target}
}

func (e *armError) body() []byte {
	b, _ := json.Marshal(struct {
		Error armErrorDetail `json:"error"`
	}{e.detail()})
	return b
}

func invalidParameter(target, format string, args ...any) *armError {
	return newARMError(http.StatusBadRequest, "InvalidParameter", format, args...).withTarget(target)
}

func missingParameter(target string) *armError {
	return invalidParameter(target, "Required parameter '%s' is missing (null).", target)
}

func resourceNotFound(typ, rg, name string) *armError {
	return newARMError(http.StatusNotFound, "ResourceNotFound",
		"The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		typ, name, rg)
}

func notImplemented(what string) *armError {
	return newARMError(http.StatusNotImplemented, "NotImplemented", "cloudsim: %s is not simulated", what)
}

// toARMError maps an error of a fake transport to the ARM error the
// simulator answers with.
func toARMError(err error) *armError {
	var ae *armError
	if errors.As(err, &ae) {
		return ae
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return newARMError(re.StatusCode, re.ErrorCode, "%s", re.ErrorCode)
	}
	msg := err.Error()
	if strings.Contains(msg, "not implemented") || strings.Contains(msg, "unhandled API") {
		return notImplemented(msg)
	}
	return newARMError(http.StatusBadRequest, "InvalidRequestContent",
		"The request content was invalid and could not be deserialized: %s", msg)
}

// ---------------------------------------------------------------------------
// The layer in front of the fake transports

const (
	nsCompute = "microsoft.compute"
	nsNetwork = "microsoft.network"
)

// azureTransport is a policy.Transporter for the simulator; only, if not
// "", is the one provider namespace it serves.
type azureTransport struct {
	a    *Azure
	only string
}

func (t *azureTransport) Do(req *http.Request) (*http.Response, error) {
	return t.a.roundTrip(req, t.only)
}

// azPath is a parsed ARM resource path.
type azPath struct {
	listing   string // the listing prefix, "" if none
	sub, rg   string
	namespace string // lower case: microsoft.compute or microsoft.network
	typ       string // lower case: virtualmachines, disks, networkinterfaces…
	name      string // "" for a collection
	poll      bool   // a fake poller's status request
	base      string // the path without listing prefix nor fake suffixes
}

var (
	listingRE = regexp.MustCompile(`^` + regexp.QuoteMeta(listingPrefix) + `\d+`)
	pageRE    = regexp.MustCompile(regexp.QuoteMeta(fakePagePrefix) + `\d+$`)
	armPathRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/([^/]+)/([^/]+)(?:/([^/]+))?$`)
	nicIDRE   = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Network/networkInterfaces/([^/]+)$`)
)

// parseAzurePath parses the resource paths the simulator knows; nil if
// path is not one.
func parseAzurePath(path string) *azPath {
	p := &azPath{}
	if m := listingRE.FindString(path); m != "" {
		p.listing = m
		path = strings.TrimPrefix(path, m)
		path = pageRE.ReplaceAllString(path, "")
	}
	if rest, ok := strings.CutSuffix(path, fakePollSuffix); ok {
		p.poll = true
		path = rest
	}
	m := armPathRE.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	p.sub, p.rg, p.namespace, p.typ, p.name = m[1], m[2], strings.ToLower(m[3]), strings.ToLower(m[4]), m[5]
	p.base = path
	return p
}

// vmSizesRE matches the path of a location's VM sizes listing.
var vmSizesRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/providers/Microsoft\.Compute/locations/([^/]+)/vmSizes$`)

// inferAPI names the client method that sends method to p, as the SDK's
// clients name it in the request context; "" if the simulator has none.
func inferAPI(method string, p *azPath) string {
	type route struct{ namespace, typ string }
	apis := map[route]map[string]string{
		{nsCompute, "virtualmachines"}:   {http.MethodPut: apiVMCreate, http.MethodGet: apiVMGet, http.MethodDelete: apiVMDelete},
		{nsCompute, "disks"}:             {http.MethodPut: apiDiskCreate, http.MethodGet: apiDiskGet, http.MethodDelete: apiDiskDelete},
		{nsNetwork, "networkinterfaces"}: {http.MethodPut: apiNICCreate, http.MethodGet: apiNICGet, http.MethodDelete: apiNICDelete},
	}
	lists := map[route]string{
		{nsCompute, "virtualmachines"}:   apiVMList,
		{nsNetwork, "networkinterfaces"}: apiNICList,
	}
	r := route{p.namespace, p.typ}
	if p.name == "" {
		if method == http.MethodGet {
			return lists[r]
		}
		return ""
	}
	return apis[r][method]
}

// shortAPI is how Calls names an API: without "Client".
func shortAPI(api string) string {
	client, method, _ := strings.Cut(api, ".")
	return strings.TrimSuffix(client, "Client") + "." + method
}

func (a *Azure) count(op string) {
	a.mu.Lock()
	a.calls[op]++
	a.mu.Unlock()
}

// roundTrip answers an ARM request, through the fakes or, for the status
// requests of long-running operations, itself.
func (a *Azure) roundTrip(req *http.Request, only string) (*http.Response, error) {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return nil, errAzureClosed
	}

	p := parseAzurePath(req.URL.Path)
	api, _ := req.Context().Value(runtime.CtxAPINameKey{}).(string)
	if p != nil && !p.poll && api == "" {
		if api = inferAPI(req.Method, p); api != "" {
			req = req.WithContext(context.WithValue(req.Context(), runtime.CtxAPINameKey{}, api))
		}
	}
	// A subscription-level listing (no resource group), from another
	// process: the VM sizes of a location.
	if m := vmSizesRE.FindStringSubmatch(req.URL.Path); p == nil && api == "" && m != nil && req.Method == http.MethodGet {
		api = "VirtualMachineSizesClient.NewListPager"
		req = req.WithContext(context.WithValue(req.Context(), runtime.CtxAPINameKey{}, api))
		if !strings.EqualFold(m[1], a.sub) {
			a.count(shortAPI(api))
			return armResponse(req, newARMError(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", m[1])), nil
		}
	}
	if p != nil && !strings.EqualFold(p.sub, a.sub) {
		if api != "" {
			a.count(shortAPI(api))
		}
		return armResponse(req, newARMError(http.StatusNotFound, "SubscriptionNotFound",
			"The subscription '%s' could not be found.", p.sub)), nil
	}
	if p != nil && p.poll {
		return a.poll(req, p, api), nil
	}
	if api == "" {
		return armResponse(req, notImplemented(req.Method+" "+req.URL.Path)), nil
	}
	a.count(shortAPI(api))

	namespace := nsCompute
	if p != nil {
		namespace = p.namespace
	} else if strings.HasPrefix(api, "InterfacesClient.") {
		namespace = nsNetwork
	}
	if only != "" && namespace != only {
		return nil, azNonRetriable{fmt.Errorf("cloudsim: the %s transport cannot serve %s %s", only, req.Method, req.URL.Path)}
	}
	var tr policy.Transporter
	switch namespace {
	case nsCompute:
		tr = a.compute
	case nsNetwork:
		tr = a.network
	default:
		return armResponse(req, notImplemented(api)), nil
	}

	if api == apiVMList && p != nil && p.listing == "" {
		req = a.withListing(req)
	}
	// The fakes keep a long-running operation's state per path, so two
	// concurrent requests for one resource would share it: serialize them.
	lock := ""
	if _, method, _ := strings.Cut(api, "."); strings.HasPrefix(method, "Begin") {
		lock = strings.ToLower(req.URL.Path)
	}

	resp, err := a.dispatch(req, tr, lock)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, err
		}
		return armResponse(req, toARMError(err)), nil
	}
	if resp.Header.Get(fakePollerStatus) == "InProgress" && p != nil {
		a.setRetryAfter(resp, p)
	}
	return resp, nil
}

// dispatch hands req to the fake transport tr, holding the lock of path
// lock (if not "") meanwhile. The fake runs to completion even if req's
// context ends first, as a server finishes a request whose client went
// away; dispatch then returns the context's error.
func (a *Azure) dispatch(req *http.Request, tr policy.Transporter, lock string) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		if lock != "" {
			mu := a.pathLock(lock)
			mu.Lock()
			defer mu.Unlock()
		}
		resp, err := tr.Do(req.WithContext(context.WithoutCancel(req.Context())))
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

func (a *Azure) pathLock(path string) *sync.Mutex {
	a.mu.Lock()
	defer a.mu.Unlock()
	mu := a.pathLocks[path]
	if mu == nil {
		mu = &sync.Mutex{}
		a.pathLocks[path] = mu
	}
	return mu
}

// withListing gives a listing's first request a path of its own: the fake
// keeps a pager's remaining pages per path and puts that path in the
// nextLinks, so each listing pages through its own snapshot.
func (a *Azure) withListing(req *http.Request) *http.Request {
	a.mu.Lock()
	a.listings++
	prefix := listingPrefix + strconv.Itoa(a.listings)
	a.mu.Unlock()
	r := req.Clone(req.Context())
	r.URL.Path = prefix + r.URL.Path
	if r.URL.RawPath != "" {
		r.URL.RawPath = prefix + r.URL.RawPath
	}
	return r
}

// setRetryAfter tells the poller of a long-running operation just begun
// when to ask again (without it, PollUntilDone waits its 30s default).
func (a *Azure) setRetryAfter(resp *http.Response, p *azPath) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v := a.vmByKey[azKey(p.rg, p.name)]; v != nil && v.op != nil && !v.op.done {
		resp.Header.Set("Retry-After-Ms", retryAfterMS(time.Until(v.op.until)))
	}
}

func retryAfterMS(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// poll answers the status request of a fake poller: the state of the
// operation api (or, unnamed, the latest) on the resource of p.
func (a *Azure) poll(req *http.Request, p *azPath, api string) *http.Response {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(now)

	var v *azVM
	if p.namespace == nsCompute && p.typ == "virtualmachines" && p.name != "" {
		v = a.vmByKey[azKey(p.rg, p.name)]
	}
	var op *azOp
	if v != nil {
		switch api {
		case apiVMCreate:
			op = v.putOp
		case apiVMDelete:
			op = v.delOp
		case "":
			op = v.op
			if op != nil && op.kind == "delete" {
				api = apiVMDelete
			} else {
				api = apiVMCreate
			}
		}
	}
	if api != "" {
		a.calls[shortAPI(api)+".Poll"]++
	}
	if op == nil {
		return armResponse(req, newARMError(http.StatusNotFound, "ResourceNotFound",
			"No operation was found for resource '%s'.", p.base))
	}

	h := http.Header{}
	var body []byte
	switch {
	case !op.done:
		h.Set(fakePollerStatus, "InProgress")
		h.Set("Retry-After-Ms", retryAfterMS(op.until.Sub(now)))
	case op.err != nil:
		h.Set(fakePollerStatus, "Failed")
		body, _ = json.Marshal(struct {
			Status string         `json:"status"`
			Error  armErrorDetail `json:"error"`
		}{"Failed", op.err.detail()})
	case op.kind == "delete":
		h.Set(fakePollerStatus, "Succeeded")
	default:
		h.Set(fakePollerStatus, "Succeeded")
		body, _ = json.Marshal(a.renderVM(v, false))
	}
	return newAzureResponse(req, http.StatusOK, h, body)
}

func newAzureResponse(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	if len(body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func armResponse(req *http.Request, e *armError) *http.Response {
	return newAzureResponse(req, e.status, nil, e.body())
}

// ---------------------------------------------------------------------------
// HTTPS bridge and managed-identity endpoint

func (a *Azure) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/msi/token" {
		a.serveToken(w, r)
		return
	}
	if e := a.checkToken(r.Header.Get("Authorization")); e != nil {
		writeARMError(w, e)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, azureMaxBody))
	if err != nil {
		writeARMError(w, newARMError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "%v", err))
		return
	}
	req := r.Clone(r.Context())
	req.RequestURI = ""
	req.URL.Scheme = "https"
	req.URL.Host = r.Host
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))

	resp, err := a.roundTrip(req, "")
	if err != nil {
		if r.Context().Err() == nil {
			writeARMError(w, newARMError(http.StatusServiceUnavailable, "ServiceUnavailable", "%v", err))
		}
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if resp.StatusCode != http.StatusNoContent {
		_, _ = io.Copy(w, resp.Body)
	}
}

func writeARMError(w http.ResponseWriter, e *armError) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body())
}

// checkToken accepts an Authorization header carrying a bearer token that
// the token endpoint issued and that has not expired.
func (a *Azure) checkToken(h string) *armError {
	if h == "" {
		return newARMError(http.StatusUnauthorized, "AuthenticationFailed",
			"Authentication failed. The 'Authorization' header is missing.")
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return newARMError(http.StatusUnauthorized, "AuthenticationFailed",
			"Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	a.mu.Lock()
	exp, ok := a.tokens[tok]
	a.mu.Unlock()
	switch {
	case !ok:
		return newARMError(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	case time.Now().After(exp):
		return newARMError(http.StatusUnauthorized, "ExpiredAuthenticationToken",
			"The access token expiry UTC time '%s' is earlier than current UTC time.", exp.UTC().Format(time.RFC1123))
	}
	return nil
}

// serveToken is the App Service managed-identity token endpoint.
func (a *Azure) serveToken(w http.ResponseWriter, r *http.Request) {
	a.count("ManagedIdentity.Token")
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
	}
	q := r.URL.Query()
	switch {
	case r.Method != http.MethodGet:
		fail(http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes GET requests")
	case r.Header.Get("X-IDENTITY-HEADER") != IdentityHeader:
		fail(http.StatusUnauthorized, "unauthorized", "missing or wrong X-IDENTITY-HEADER")
	case q.Get("api-version") != msiAPIVersion:
		fail(http.StatusBadRequest, "invalid_request", "api-version must be "+msiAPIVersion)
	case q.Get("resource") == "":
		fail(http.StatusBadRequest, "invalid_request", "resource is required")
	default:
		tok := "cloudsim-" + randomHex(16)
		exp := time.Now().Add(azureTokenLifetime)
		a.mu.Lock()
		a.tokens[tok] = exp
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"access_token": tok,
			"expires_on":   strconv.FormatInt(exp.Unix(), 10),
			"resource":     q.Get("resource"),
			"token_type":   "Bearer",
		})
	}
}

// ---------------------------------------------------------------------------
// State

func azKey(rg, name string) string { return strings.ToLower(rg) + "/" + strings.ToLower(name) }

func (a *Azure) liveVM(key string) *azVM {
	if v := a.vmByKey[key]; v != nil && !v.Deleted {
		return v
	}
	return nil
}

// settle completes the operations whose time is up; a.mu is held.
func (a *Azure) settle(now time.Time) {
	for _, v := range a.vms {
		if op := v.op; op != nil && !op.done && !now.Before(op.until) {
			a.finish(v, op)
		}
	}
}

// finish completes v's operation op; a.mu is held.
func (a *Azure) finish(v *azVM, op *azOp) {
	op.done = true
	switch op.kind {
	case "create", "update":
		v.ProvisioningState = psSucceeded
		if op.err != nil {
			v.ProvisioningState = psFailed
			if op.revert != nil {
				v.apply(op.revert.spec, op.revert.model)
			}
		}
	case "delete":
		v.Deleted = true
		v.ProvisioningState = psDeleted
		if d := a.diskByKey[azKey(v.ResourceGroup, v.OSDisk)]; d != nil && d.vm == v.key {
			d.vm = ""
			if v.spec.osDiskDelete {
				delete(a.diskByKey, d.key)
			}
		}
		for _, ref := range v.spec.nics {
			n := a.nicByKey[ref.key]
			if n == nil || n.vm != v.key {
				continue
			}
			n.vm = ""
			if ref.del {
				n.Deleted = true
				delete(a.nicByKey, n.key)
			}
		}
	}
}

// apply makes spec (and model, its PUT body) v's configuration.
func (v *azVM) apply(spec *vmSpec, model armcompute.VirtualMachine) {
	v.spec = spec
	v.model = model
	v.Size = spec.size
	v.Zone = ""
	if len(spec.zones) > 0 {
		v.Zone = spec.zones[0]
	}
	v.Tags = spec.tags
	v.CustomData = spec.customData
	v.OSDisk = spec.osDisk
	v.NIC = ""
	if len(spec.nics) > 0 {
		v.NIC = spec.nics[0].name
	}
}

// capacityRule returns the NoCapacity rule that size in zone falls under,
// one that fails the SKU first; nil if none. a.mu is held.
func (a *Azure) capacityRule(size, zone string) *azCapacityRule {
	var found *azCapacityRule
	for i, r := range a.noCapacity {
		if (r.size == "" || strings.EqualFold(r.size, size)) && (r.zone == "" || r.zone == zone) {
			if found == nil || (r.sku && !found.sku) {
				found = &a.noCapacity[i]
			}
		}
	}
	return found
}

func (a *Azure) skuNotAvailable(size, zone string) *armError {
	return newARMError(http.StatusConflict, "SkuNotAvailable",
		"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: %s' is currently not available in location '%s' zones '%s'. "+
			"Please try another size or deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details.",
		size, a.location, zone)
}

func allocationFailed() *armError {
	return newARMError(http.StatusOK, "AllocationFailed",
		"Allocation failed. We do not have sufficient capacity for the requested VM size in this region. "+
			"Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance")
}

func (a *Azure) resourceID(rg, provider, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", a.sub, rg, provider, name)
}

func (a *Azure) vmResourceID(rg, name string) string {
	return a.resourceID(rg, "Microsoft.Compute/virtualMachines", name)
}

func (a *Azure) diskResourceID(rg, name string) string {
	return a.resourceID(rg, "Microsoft.Compute/disks", name)
}

func (a *Azure) nicResourceID(rg, name string) string {
	return a.resourceID(rg, "Microsoft.Network/networkInterfaces", name)
}

// vmIDOf is the resource ID of the VM with key; a.mu is held.
func (a *Azure) vmIDOf(key string) string {
	if v := a.vmByKey[key]; v != nil {
		return a.vmResourceID(v.ResourceGroup, v.Name)
	}
	return ""
}

func normalizeLocation(l string) string {
	return strings.ToLower(strings.ReplaceAll(l, " ", ""))
}

func (a *Azure) checkLocation(loc *string, typ string) *armError {
	if loc == nil || *loc == "" {
		return newARMError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if normalizeLocation(*loc) != normalizeLocation(a.location) {
		return newARMError(http.StatusBadRequest, "LocationNotAvailableForResourceType",
			"The provided location '%s' is not available for resource type '%s'. List of available regions for the resource type is '%s'.",
			*loc, typ, a.location)
	}
	return nil
}

func tagMapOf(tags map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// cloneJSON deep-copies an SDK model through its JSON form.
func cloneJSON[T any](v T) T {
	var out T
	b, err := json.Marshal(v)
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// ---------------------------------------------------------------------------
// Virtual machines

// parseVMSpec validates the PUT body of VM name, as ARM does before it
// accepts the request.
func (a *Azure) parseVMSpec(name string, vm *armcompute.VirtualMachine) (*vmSpec, *armError) {
	if e := a.checkLocation(vm.Location, "Microsoft.Compute/virtualMachines"); e != nil {
		return nil, e
	}
	p := vm.Properties
	if p == nil {
		return nil, missingParameter("properties")
	}
	s := &vmSpec{name: name, tags: tagMapOf(vm.Tags)}
	if p.HardwareProfile == nil || p.HardwareProfile.VMSize == nil || *p.HardwareProfile.VMSize == "" {
		return nil, missingParameter("hardwareProfile.vmSize")
	}
	s.size = string(*p.HardwareProfile.VMSize)
	for _, z := range vm.Zones {
		if z != nil {
			s.zones = append(s.zones, *z)
		}
	}
	if len(s.zones) > 1 {
		return nil, invalidParameter("zones", "A virtual machine can be placed in only one zone; %d were requested.", len(s.zones))
	}

	sp := p.StorageProfile
	if sp == nil {
		return nil, missingParameter("storageProfile")
	}
	switch img := sp.ImageReference; {
	case img == nil:
		return nil, missingParameter("storageProfile.imageReference")
	case img.ID != nil && *img.ID != "":
		s.image = strings.ToLower(*img.ID)
	case img.SharedGalleryImageID != nil && *img.SharedGalleryImageID != "":
		s.image = strings.ToLower(*img.SharedGalleryImageID)
	case img.CommunityGalleryImageID != nil && *img.CommunityGalleryImageID != "":
		s.image = strings.ToLower(*img.CommunityGalleryImageID)
	case img.Publisher != nil && img.Offer != nil && img.SKU != nil:
		s.image = strings.ToLower(strings.Join([]string{*img.Publisher, *img.Offer, *img.SKU, deref(img.Version)}, ":"))
	default:
		return nil, invalidParameter("imageReference",
			"The value of parameter imageReference is invalid: give an id, a gallery image id, or publisher, offer and sku.")
	}
	s.osDisk = name + "-osdisk"
	if od := sp.OSDisk; od != nil {
		if od.Name != nil && *od.Name != "" {
			s.osDisk = *od.Name
		}
		s.osDiskDelete = od.DeleteOption != nil && strings.EqualFold(string(*od.DeleteOption), string(armcompute.DiskDeleteOptionTypesDelete))
	}

	op := p.OSProfile
	if op == nil {
		return nil, missingParameter("osProfile")
	}
	if op.AdminUsername == nil || *op.AdminUsername == "" {
		return nil, missingParameter("osProfile.adminUsername")
	}
	s.adminUser = *op.AdminUsername
	s.computerName = name
	if op.ComputerName != nil && *op.ComputerName != "" {
		s.computerName = *op.ComputerName
	}
	if op.CustomData != nil {
		const msg = "Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters."
		if len(*op.CustomData) > azureMaxCustomData {
			return nil, invalidParameter("customData", msg)
		}
		data, err := base64.StdEncoding.DecodeString(*op.CustomData)
		if err != nil {
			return nil, invalidParameter("customData", msg)
		}
		s.customData, s.hasCustomData = data, true
	}

	np := p.NetworkProfile
	if np == nil || len(np.NetworkInterfaces) == 0 {
		return nil, missingParameter("networkProfile.networkInterfaces")
	}
	primaries := 0
	for i, ref := range np.NetworkInterfaces {
		path := fmt.Sprintf("properties.networkProfile.networkInterfaces[%d].id", i)
		if ref == nil || ref.ID == nil || *ref.ID == "" {
			return nil, missingParameter(strings.TrimPrefix(path, "properties."))
		}
		m := nicIDRE.FindStringSubmatch(*ref.ID)
		if m == nil {
			return nil, newARMError(http.StatusBadRequest, "LinkedInvalidPropertyId",
				"Property id '%s' at path '%s' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
				*ref.ID, path)
		}
		if !strings.EqualFold(m[1], a.sub) {
			return nil, newARMError(http.StatusBadRequest, "NotFound", "Resource %s not found.", *ref.ID)
		}
		r := vmNICRef{key: azKey(m[2], m[3]), rg: m[2], name: m[3]}
		if rp := ref.Properties; rp != nil {
			r.del = rp.DeleteOption != nil && strings.EqualFold(string(*rp.DeleteOption), string(armcompute.DeleteOptionsDelete))
			if rp.Primary != nil && *rp.Primary {
				primaries++
			}
		}
		if slices.ContainsFunc(s.nics, func(o vmNICRef) bool { return o.key == r.key }) {
			return nil, invalidParameter("networkInterfaces", "Network interface %s is referenced more than once.", *ref.ID)
		}
		s.nics = append(s.nics, r)
	}
	if len(s.nics) > 1 && primaries != 1 {
		return nil, newARMError(http.StatusBadRequest, "VirtualMachineMustHaveOneNetworkInterfaceAsPrimary",
			"Virtual machine %s must have one network interface set as the primary.", name)
	}
	return s, nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// changed compares n, a new PUT, with s, the VM's configuration: it returns
// the first property that may not change and does, and whether anything
// differs at all.
func (s *vmSpec) changed(n *vmSpec) (immutable string, differs bool) {
	switch {
	case n.hasCustomData && !bytes.Equal(n.customData, s.customData):
		return "customData", true
	case n.image != s.image:
		return "imageReference", true
	case !strings.EqualFold(n.osDisk, s.osDisk):
		return "osDisk.name", true
	case !slices.Equal(n.zones, s.zones):
		return "zones", true
	case n.adminUser != s.adminUser:
		return "adminUsername", true
	case !strings.EqualFold(n.computerName, s.computerName):
		return "computerName", true
	case !slices.EqualFunc(n.nics, s.nics, func(x, y vmNICRef) bool { return x.key == y.key }):
		return "networkProfile.networkInterfaces", true
	}
	return "", !strings.EqualFold(n.size, s.size) || !maps.Equal(n.tags, s.tags) ||
		n.osDiskDelete != s.osDiskDelete ||
		!slices.EqualFunc(n.nics, s.nics, func(x, y vmNICRef) bool { return x.del == y.del })
}

// storedModel is the PUT body as the simulator keeps it: without secrets
// and without the properties ARM computes.
func storedModel(vm armcompute.VirtualMachine) armcompute.VirtualMachine {
	m := cloneJSON(vm)
	m.ID, m.Name, m.Type, m.Etag, m.SystemData, m.Resources = nil, nil, nil, nil, nil, nil
	if p := m.Properties; p != nil {
		p.ProvisioningState, p.InstanceView, p.VMID, p.TimeCreated = nil, nil, nil, nil
		if p.OSProfile != nil {
			p.OSProfile.CustomData = nil
			p.OSProfile.AdminPassword = nil
		}
	}
	return m
}

// renderVM is v as ARM returns it; a.mu is held.
func (a *Azure) renderVM(v *azVM, instanceView bool) armcompute.VirtualMachine {
	m := cloneJSON(v.model)
	m.ID = to.Ptr(a.vmResourceID(v.ResourceGroup, v.Name))
	m.Name = to.Ptr(v.Name)
	m.Type = to.Ptr("Microsoft.Compute/virtualMachines")
	m.Location = to.Ptr(a.location)
	if m.Properties == nil {
		m.Properties = &armcompute.VirtualMachineProperties{}
	}
	p := m.Properties
	p.ProvisioningState = to.Ptr(v.ProvisioningState)
	p.VMID = to.Ptr(v.vmID)
	p.TimeCreated = to.Ptr(v.created)
	if p.OSProfile != nil && p.OSProfile.ComputerName == nil {
		p.OSProfile.ComputerName = to.Ptr(v.spec.computerName)
	}
	if p.StorageProfile == nil {
		p.StorageProfile = &armcompute.StorageProfile{}
	}
	if p.StorageProfile.OSDisk == nil {
		p.StorageProfile.OSDisk = &armcompute.OSDisk{CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage)}
	}
	od := p.StorageProfile.OSDisk
	od.Name = to.Ptr(v.OSDisk)
	if d := a.diskByKey[azKey(v.ResourceGroup, v.OSDisk)]; d != nil && d.vm == v.key {
		if od.ManagedDisk == nil {
			od.ManagedDisk = &armcompute.ManagedDiskParameters{}
		}
		od.ManagedDisk.ID = to.Ptr(a.diskResourceID(d.rg, d.name))
	}
	if instanceView {
		p.InstanceView = &armcompute.VirtualMachineInstanceView{
			ComputerName: to.Ptr(v.spec.computerName),
			Statuses:     a.vmStatuses(v),
		}
	}
	return m
}

func (a *Azure) vmStatuses(v *azVM) []*armcompute.InstanceViewStatus {
	code := "ProvisioningState/" + strings.ToLower(v.ProvisioningState)
	level := armcompute.StatusLevelTypesInfo
	var msg *string
	if v.ProvisioningState == psFailed && v.putOp != nil && v.putOp.err != nil {
		code += "/" + v.putOp.err.code
		level = armcompute.StatusLevelTypesError
		msg = to.Ptr(v.putOp.err.message)
	}
	out := []*armcompute.InstanceViewStatus{{
		Code:          to.Ptr(code),
		Level:         to.Ptr(level),
		DisplayStatus: to.Ptr("Provisioning " + strings.ToLower(v.ProvisioningState)),
		Message:       msg,
	}}
	power := ""
	switch {
	case v.stopped:
		power = "stopped"
	case v.booted && v.ProvisioningState == psCreating:
		power = "starting"
	case v.booted:
		power = "running"
	}
	if power != "" {
		out = append(out, &armcompute.InstanceViewStatus{
			Code:          to.Ptr("PowerState/" + power),
			Level:         to.Ptr(armcompute.StatusLevelTypesInfo),
			DisplayStatus: to.Ptr("VM " + power),
		})
	}
	return out
}

type vmPoller = azfake.PollerResponder[armcompute.VirtualMachinesClientCreateOrUpdateResponse]

// vmCreateOrUpdate is VirtualMachinesServer.BeginCreateOrUpdate.
func (a *Azure) vmCreateOrUpdate(_ context.Context, rg, name string, vm armcompute.VirtualMachine,
	_ *armcompute.VirtualMachinesClientBeginCreateOrUpdateOptions) (resp vmPoller, errResp azfake.ErrorResponder) {
	start := time.Now()
	spec, e := a.parseVMSpec(name, &vm)
	if e != nil {
		errResp.SetError(e)
		return resp, errResp
	}
	model := storedModel(vm)
	key := azKey(rg, name)

	a.mu.Lock()
	a.settle(start)
	if a.closed {
		a.mu.Unlock()
		errResp.SetError(newARMError(http.StatusConflict, "OperationNotAllowed", "The simulator is closed."))
		return resp, errResp
	}
	v := a.liveVM(key)
	switch {
	case v == nil || (v.ProvisioningState == psFailed && !v.booted):
		// A new VM, or one whose creation failed before it booted: create.
		status := http.StatusCreated
		if v != nil {
			status = http.StatusOK
		}
		v, op, e := a.startCreate(v, rg, name, spec, model, start)
		a.mu.Unlock()
		if e != nil {
			errResp.SetError(e)
			return resp, errResp
		}
		if op != nil {
			a.boot(v, spec, op)
		}
		resp.AddNonTerminalResponse(status, nil)
		return resp, errResp

	case v.op != nil && !v.op.done:
		defer a.mu.Unlock()
		if v.op.kind == "delete" {
			errResp.SetError(newARMError(http.StatusConflict, "OperationNotAllowed",
				"Operation 'PUT' is not allowed on VM '%s' since the VM is marked for deletion. "+
					"You can only retry the Delete operation (or wait for an ongoing one to complete).", v.Name))
			return resp, errResp
		}
		if imm, differs := v.spec.changed(spec); imm != "" || differs {
			errResp.SetError(newARMError(http.StatusConflict, "AnotherOperationInProgress",
				"Operation on VM '%s' is not allowed: another operation is in progress.", v.Name))
			return resp, errResp
		}
		resp.AddNonTerminalResponse(http.StatusOK, nil) // the same PUT again: await the operation under way
		return resp, errResp

	default:
		defer a.mu.Unlock()
		imm, differs := v.spec.changed(spec)
		if imm != "" {
			errResp.SetError(newARMError(http.StatusConflict, "PropertyChangeNotAllowed",
				"Changing property '%s' is not allowed.", imm).withTarget(imm))
			return resp, errResp
		}
		if !differs && v.ProvisioningState == psSucceeded {
			// Idempotent: nothing changes, nothing boots.
			resp.SetTerminalResponse(http.StatusOK,
				armcompute.VirtualMachinesClientCreateOrUpdateResponse{VirtualMachine: a.renderVM(v, false)}, nil)
			return resp, errResp
		}
		var allocErr *armError
		if !strings.EqualFold(spec.size, v.spec.size) {
			if r := a.capacityRule(spec.size, v.Zone); r != nil {
				if r.sku {
					errResp.SetError(a.skuNotAvailable(spec.size, v.Zone))
					return resp, errResp
				}
				allocErr = allocationFailed()
			}
		}
		if !spec.hasCustomData {
			spec.customData, spec.hasCustomData = v.spec.customData, v.spec.hasCustomData
		}
		op := &azOp{kind: "update", until: start.Add(a.delay), err: allocErr,
			revert: &azRevert{spec: v.spec, model: v.model}}
		v.apply(spec, model)
		v.ProvisioningState = psUpdating
		v.op, v.putOp = op, op
		resp.AddNonTerminalResponse(http.StatusOK, nil)
		return resp, errResp
	}
}

// startCreate records the creation of VM name (re-using v, a VM whose
// creation failed, if not nil) and returns the operation to Boot it for, nil
// if it is not to boot; a.mu is held.
func (a *Azure) startCreate(v *azVM, rg, name string, spec *vmSpec, model armcompute.VirtualMachine, start time.Time) (*azVM, *azOp, *armError) {
	key := azKey(rg, name)
	if !spec.hasCustomData {
		return nil, nil, missingParameter("osProfile.customData")
	}
	for _, ref := range spec.nics {
		n := a.nicByKey[ref.key]
		if n == nil {
			return nil, nil, newARMError(http.StatusBadRequest, "NotFound", "Resource %s not found.",
				a.nicResourceID(ref.rg, ref.name))
		}
		if n.vm != "" && n.vm != key {
			return nil, nil, newARMError(http.StatusBadRequest, "NicInUse",
				"Network Interface %s is used by existing resource %s.",
				a.nicResourceID(n.ResourceGroup, n.Name), a.vmIDOf(n.vm))
		}
	}
	diskKey := azKey(rg, spec.osDisk)
	if d := a.diskByKey[diskKey]; d != nil && d.vm != key {
		return nil, nil, newARMError(http.StatusConflict, "ConflictingUserInput",
			"A disk with name %s already exists in Resource Group %s. 'Name' is an optional property for a disk and a unique name will be generated if not provided.",
			spec.osDisk, rg)
	}
	zone := ""
	if len(spec.zones) > 0 {
		zone = spec.zones[0]
	}
	rule := a.capacityRule(spec.size, zone)
	if rule != nil && rule.sku {
		return nil, nil, a.skuNotAvailable(spec.size, zone)
	}

	if v == nil {
		v = &azVM{key: key, vmID: newUUID(), created: start}
		v.Name, v.ResourceGroup = name, rg
		a.vms = append(a.vms, v)
		a.vmByKey[key] = v
	} else {
		// Let go of what the failed creation held and this one does not.
		for _, ref := range v.spec.nics {
			if n := a.nicByKey[ref.key]; n != nil && n.vm == key {
				n.vm = ""
			}
		}
		if d := a.diskByKey[azKey(rg, v.OSDisk)]; d != nil && d.vm == key {
			d.vm = ""
		}
	}
	v.apply(spec, model)
	v.ProvisioningState = psCreating
	for _, ref := range spec.nics {
		a.nicByKey[ref.key].vm = key
	}
	op := &azOp{kind: "create", until: start.Add(a.delay)}
	v.op, v.putOp = op, op
	if rule != nil {
		op.err = allocationFailed()
		return v, nil, nil
	}
	d := a.diskByKey[diskKey]
	if d == nil {
		d = &azDisk{name: spec.osDisk, rg: rg, key: diskKey, zones: spec.zones, created: start}
		a.disks = append(a.disks, d)
		a.diskByKey[diskKey] = d
	}
	d.vm = key
	v.bootDone = make(chan struct{})
	a.boots.Add(1)
	return v, op, nil
}

// boot calls the Launcher's Boot for v, created by op, and records the
// outcome.
func (a *Azure) boot(v *azVM, spec *vmSpec, op *azOp) {
	defer a.boots.Done()
	ip, err := a.launcher.Boot(v.Name, slices.Clone(spec.customData))

	a.mu.Lock()
	close(v.bootDone)
	if err != nil {
		op.err = newARMError(http.StatusOK, "OSProvisioningInternalError",
			"OS Provisioning failed for VM '%s' due to an internal error: %v", v.Name, err)
	} else {
		v.booted = true
		v.PrivateIP = ip
		if n := a.nicByKey[spec.nics[0].key]; n != nil && ip != "" {
			n.PrivateIP = ip
		}
	}
	stop := a.closed && v.booted && !v.stopped
	if stop {
		v.stopped = true
	}
	a.mu.Unlock()
	if stop {
		_ = a.launcher.Stop(v.Name)
	}
}

// vmGet is VirtualMachinesServer.Get.
func (a *Azure) vmGet(_ context.Context, rg, name string, o *armcompute.VirtualMachinesClientGetOptions) (
	resp azfake.Responder[armcompute.VirtualMachinesClientGetResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	v := a.liveVM(azKey(rg, name))
	if v == nil {
		errResp.SetError(resourceNotFound("Microsoft.Compute/virtualMachines", rg, name))
		return resp, errResp
	}
	iv := o != nil && o.Expand != nil && *o.Expand == armcompute.InstanceViewTypesInstanceView
	resp.SetResponse(http.StatusOK, armcompute.VirtualMachinesClientGetResponse{VirtualMachine: a.renderVM(v, iv)}, nil)
	return resp, errResp
}

// vmList is VirtualMachinesServer.NewListPager: the group's VMs in
// creation order, azurePageSize a page.
// sizeList lists the VM sizes of the location (one page); another
// location offers none.
func (a *Azure) sizeList(location string, _ *armcompute.VirtualMachineSizesClientListOptions) (
	resp azfake.PagerResponder[armcompute.VirtualMachineSizesClientListResponse]) {
	var sizes []*armcompute.VirtualMachineSize
	if strings.EqualFold(location, a.location) {
		for _, name := range a.sizes {
			sizes = append(sizes, &armcompute.VirtualMachineSize{Name: to.Ptr(name)})
		}
	}
	resp.AddPage(http.StatusOK, armcompute.VirtualMachineSizesClientListResponse{
		VirtualMachineSizeListResult: armcompute.VirtualMachineSizeListResult{Value: sizes},
	}, nil)
	return resp
}

func (a *Azure) vmList(rg string, _ *armcompute.VirtualMachinesClientListOptions) (
	resp azfake.PagerResponder[armcompute.VirtualMachinesClientListResponse]) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	var page []*armcompute.VirtualMachine
	pages := 0
	add := func() {
		resp.AddPage(http.StatusOK, armcompute.VirtualMachinesClientListResponse{
			VirtualMachineListResult: armcompute.VirtualMachineListResult{Value: page},
		}, nil)
		page = nil
		pages++
	}
	for _, v := range a.vms {
		if v.Deleted || !strings.EqualFold(v.ResourceGroup, rg) {
			continue
		}
		m := a.renderVM(v, false)
		page = append(page, &m)
		if len(page) == azurePageSize {
			add()
		}
	}
	if len(page) > 0 || pages == 0 {
		if page == nil {
			page = []*armcompute.VirtualMachine{}
		}
		add()
	}
	return resp
}

// vmDelete is VirtualMachinesServer.BeginDelete.
func (a *Azure) vmDelete(_ context.Context, rg, name string, _ *armcompute.VirtualMachinesClientBeginDeleteOptions) (
	resp azfake.PollerResponder[armcompute.VirtualMachinesClientDeleteResponse], errResp azfake.ErrorResponder) {
	key := azKey(rg, name)
	a.mu.Lock()
	v := a.liveVM(key)
	// Stop must not come before Boot has returned. (Requests for one VM are
	// serialized, so this wait is only a safeguard.)
	for v != nil && v.bootDone != nil && !isClosed(v.bootDone) {
		ch := v.bootDone
		a.mu.Unlock()
		<-ch
		a.mu.Lock()
		v = a.liveVM(key)
	}
	now := time.Now()
	a.settle(now)
	if v == nil || v.Deleted {
		a.mu.Unlock()
		resp.SetTerminalResponse(http.StatusNoContent, armcompute.VirtualMachinesClientDeleteResponse{}, nil)
		return resp, errResp
	}
	if v.op != nil && !v.op.done {
		if v.op.kind == "delete" {
			a.mu.Unlock()
			resp.AddNonTerminalResponse(http.StatusAccepted, nil)
			return resp, errResp
		}
		// A create or update under way is preempted.
		v.op.err = newARMError(http.StatusOK, "OperationPreempted",
			"Operation execution has been preempted by a more recent operation.")
		a.finish(v, v.op)
	}
	op := &azOp{kind: "delete", until: now.Add(a.delay)}
	v.op, v.delOp = op, op
	v.ProvisioningState = psDeleting
	stop := v.booted && !v.stopped
	if stop {
		v.stopped = true
	}
	vmName := v.Name
	a.mu.Unlock()
	if stop {
		// Azure deletes a VM whatever its OS does: a failed Stop does not
		// keep it.
		_ = a.launcher.Stop(vmName)
	}
	resp.AddNonTerminalResponse(http.StatusAccepted, nil)
	return resp, errResp
}

// ---------------------------------------------------------------------------
// Disks

// diskGet is DisksServer.Get.
func (a *Azure) diskGet(_ context.Context, rg, name string, _ *armcompute.DisksClientGetOptions) (
	resp azfake.Responder[armcompute.DisksClientGetResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	d := a.diskByKey[azKey(rg, name)]
	if d == nil {
		errResp.SetError(resourceNotFound("Microsoft.Compute/disks", rg, name))
		return resp, errResp
	}
	state := armcompute.DiskStateUnattached
	var managedBy *string
	if d.vm != "" {
		state = armcompute.DiskStateAttached
		managedBy = to.Ptr(a.vmIDOf(d.vm))
	}
	var zones []*string
	for _, z := range d.zones {
		zones = append(zones, to.Ptr(z))
	}
	resp.SetResponse(http.StatusOK, armcompute.DisksClientGetResponse{Disk: armcompute.Disk{
		ID:        to.Ptr(a.diskResourceID(d.rg, d.name)),
		Name:      to.Ptr(d.name),
		Type:      to.Ptr("Microsoft.Compute/disks"),
		Location:  to.Ptr(a.location),
		ManagedBy: managedBy,
		Zones:     zones,
		Properties: &armcompute.DiskProperties{
			CreationData:      &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionFromImage)},
			DiskSizeGB:        to.Ptr[int32](30),
			DiskState:         to.Ptr(state),
			OSType:            to.Ptr(armcompute.OperatingSystemTypesLinux),
			ProvisioningState: to.Ptr(psSucceeded),
			TimeCreated:       to.Ptr(d.created),
		},
	}}, nil)
	return resp, errResp
}

// diskDelete is DisksServer.BeginDelete; it completes at once.
func (a *Azure) diskDelete(_ context.Context, rg, name string, _ *armcompute.DisksClientBeginDeleteOptions) (
	resp azfake.PollerResponder[armcompute.DisksClientDeleteResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	d := a.diskByKey[azKey(rg, name)]
	switch {
	case d == nil:
		resp.SetTerminalResponse(http.StatusNoContent, armcompute.DisksClientDeleteResponse{}, nil)
	case d.vm != "":
		errResp.SetError(newARMError(http.StatusConflict, "OperationNotAllowed",
			"Disk %s is attached to VM %s.", d.name, a.vmIDOf(d.vm)))
	default:
		delete(a.diskByKey, d.key)
		resp.SetTerminalResponse(http.StatusOK, armcompute.DisksClientDeleteResponse{}, nil)
	}
	return resp, errResp
}

// ---------------------------------------------------------------------------
// Network interfaces

// nicCreateOrUpdate is InterfacesServer.BeginCreateOrUpdate; it completes
// at once.
func (a *Azure) nicCreateOrUpdate(_ context.Context, rg, name string, nic armnetwork.Interface,
	_ *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (
	resp azfake.PollerResponder[armnetwork.InterfacesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	if e := a.checkLocation(nic.Location, "Microsoft.Network/networkInterfaces"); e != nil {
		errResp.SetError(e)
		return resp, errResp
	}
	id := a.nicResourceID(rg, name)
	if nic.Properties == nil || len(nic.Properties.IPConfigurations) == 0 || nic.Properties.IPConfigurations[0] == nil {
		errResp.SetError(newARMError(http.StatusBadRequest, "InvalidRequestFormat",
			"Network interface %s must have at least one IP configuration.", id))
		return resp, errResp
	}
	ipc := nic.Properties.IPConfigurations[0]
	if ipc.Properties == nil || ipc.Properties.Subnet == nil || deref(ipc.Properties.Subnet.ID) == "" {
		errResp.SetError(newARMError(http.StatusBadRequest, "InvalidRequestFormat",
			"Subnet reference is required for ipconfiguration %s/ipConfigurations/%s.", id, deref(ipc.Name)))
		return resp, errResp
	}
	static := ""
	if ipc.Properties.PrivateIPAllocationMethod != nil && *ipc.Properties.PrivateIPAllocationMethod == armnetwork.IPAllocationMethodStatic {
		static = deref(ipc.Properties.PrivateIPAddress)
	}

	key := azKey(rg, name)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	n := a.nicByKey[key]
	status := http.StatusOK
	if n == nil {
		n = &azNIC{key: key}
		n.Name, n.ResourceGroup = name, rg
		n.PrivateIP = static
		if static == "" {
			n.PrivateIP = a.subnet + strconv.Itoa(a.nextHost)
			a.nextHost++
		}
		a.nics = append(a.nics, n)
		a.nicByKey[key] = n
		status = http.StatusCreated
	} else if static != "" {
		n.PrivateIP = static
	}
	m := cloneJSON(nic)
	m.ID, m.Name, m.Type, m.Etag = nil, nil, nil, nil
	n.model = m
	n.Subnet = *ipc.Properties.Subnet.ID
	n.Tags = tagMapOf(nic.Tags)
	n.etag = fmt.Sprintf("W/%q", newUUID())
	resp.SetTerminalResponse(status, armnetwork.InterfacesClientCreateOrUpdateResponse{Interface: a.renderNIC(n)}, nil)
	return resp, errResp
}

// renderNIC is n as ARM returns it; a.mu is held.
func (a *Azure) renderNIC(n *azNIC) armnetwork.Interface {
	m := cloneJSON(n.model)
	id := a.nicResourceID(n.ResourceGroup, n.Name)
	m.ID = to.Ptr(id)
	m.Name = to.Ptr(n.Name)
	m.Type = to.Ptr("Microsoft.Network/networkInterfaces")
	m.Location = to.Ptr(a.location)
	m.Etag = to.Ptr(n.etag)
	if m.Properties == nil {
		m.Properties = &armnetwork.InterfacePropertiesFormat{}
	}
	p := m.Properties
	p.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateSucceeded)
	p.VirtualMachine = nil
	if n.vm != "" {
		p.VirtualMachine = &armnetwork.SubResource{ID: to.Ptr(a.vmIDOf(n.vm))}
	}
	for i, c := range p.IPConfigurations {
		if c == nil {
			continue
		}
		if c.Name == nil {
			c.Name = to.Ptr("ipconfig" + strconv.Itoa(i+1))
		}
		c.ID = to.Ptr(id + "/ipConfigurations/" + *c.Name)
		c.Etag = to.Ptr(n.etag)
		c.Type = to.Ptr("Microsoft.Network/networkInterfaces/ipConfigurations")
		if c.Properties == nil {
			c.Properties = &armnetwork.InterfaceIPConfigurationPropertiesFormat{}
		}
		c.Properties.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateSucceeded)
		if c.Properties.PrivateIPAllocationMethod == nil {
			c.Properties.PrivateIPAllocationMethod = to.Ptr(armnetwork.IPAllocationMethodDynamic)
		}
		if c.Properties.PrivateIPAddressVersion == nil {
			c.Properties.PrivateIPAddressVersion = to.Ptr(armnetwork.IPVersionIPv4)
		}
		if i == 0 {
			c.Properties.PrivateIPAddress = to.Ptr(n.PrivateIP)
			c.Properties.Primary = to.Ptr(true)
		}
	}
	return m
}

// nicGet is InterfacesServer.Get.
func (a *Azure) nicGet(_ context.Context, rg, name string, _ *armnetwork.InterfacesClientGetOptions) (
	resp azfake.Responder[armnetwork.InterfacesClientGetResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	n := a.nicByKey[azKey(rg, name)]
	if n == nil {
		errResp.SetError(resourceNotFound("Microsoft.Network/networkInterfaces", rg, name))
		return resp, errResp
	}
	resp.SetResponse(http.StatusOK, armnetwork.InterfacesClientGetResponse{Interface: a.renderNIC(n)}, nil)
	return resp, errResp
}

// nicDelete is InterfacesServer.BeginDelete; it completes at once.
func (a *Azure) nicDelete(_ context.Context, rg, name string, _ *armnetwork.InterfacesClientBeginDeleteOptions) (
	resp azfake.PollerResponder[armnetwork.InterfacesClientDeleteResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settle(time.Now())
	n := a.nicByKey[azKey(rg, name)]
	switch {
	case n == nil:
		resp.SetTerminalResponse(http.StatusNoContent, armnetwork.InterfacesClientDeleteResponse{}, nil)
	case n.vm != "":
		errResp.SetError(newARMError(http.StatusBadRequest, "NicInUse",
			"Network Interface %s is used by existing resource %s. In order to delete the network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
			a.nicResourceID(n.ResourceGroup, n.Name), a.vmIDOf(n.vm)))
	default:
		n.Deleted = true
		delete(a.nicByKey, n.key)
		resp.SetTerminalResponse(http.StatusOK, armnetwork.InterfacesClientDeleteResponse{}, nil)
	}
	return resp, errResp
}
