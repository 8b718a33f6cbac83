package cloudsim

import (
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EC2OwnerID is the account that owns every simulated reservation.
const EC2OwnerID = "123456789012"

const (
	defaultEC2Region    = "us-east-1"
	defaultEC2PageSize  = 1000
	defaultEC2BootDelay = 100 * time.Millisecond
	// defaultInstanceType is what EC2 launches when a request names neither
	// an instance type nor a launch template.
	defaultInstanceType = "m1.small"

	maxRequestBody = 1 << 20
	maxUserData    = 16 << 10 // EC2's limit on decoded user data
	maxClientToken = 64
	maxTags        = 50
	minMaxResults  = 5
	maxMaxResults  = 1000
)

// Instance states, with the codes EC2 gives them.
const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
)

var stateCodes = map[string]int{
	statePending:      0,
	stateRunning:      16,
	stateShuttingDown: 32,
	stateTerminated:   48,
	"stopping":        64,
	"stopped":         80,
}

// EC2Options configures a simulated EC2 endpoint. The zero value is usable.
type EC2Options struct {
	// Region is the region the endpoint serves (default "us-east-1").
	// Requests signed for another region fail with AuthFailure, as they do
	// on EC2.
	Region string
	// KnownAMIs are the images RunInstances accepts; another ImageId fails
	// InvalidAMIID.NotFound. Empty: any AMI is known.
	KnownAMIs []string
	// KnownLaunchTemplates are the launch templates RunInstances accepts, by
	// id (lt-…) or by name; others fail InvalidLaunchTemplateId.NotFound or
	// InvalidLaunchTemplateName.NotFoundException. Empty: any template is
	// known.
	KnownLaunchTemplates []string
	// KnownInstanceTypes are the instance types of the region: RunInstances
	// and DescribeInstanceTypes of another fail InvalidInstanceType. Empty:
	// any well-formed type is known.
	KnownInstanceTypes []string
	// PageSize is DescribeInstances's page size when the request gives no
	// MaxResults (default 1000). A request's MaxResults takes precedence.
	PageSize int
	// BootDelay is how long an instance stays "pending" before it is
	// "running", and how long a terminated one stays "shutting-down"
	// before it is "terminated" (default 100ms).
	BootDelay time.Duration
}

// EC2Instance is a snapshot of one simulated instance.
type EC2Instance struct {
	ID      string
	ImageID string
	// LaunchTemplate is the launch template id or name the instance was
	// launched from, and LaunchTemplateVersion the version asked for.
	LaunchTemplate        string
	LaunchTemplateVersion string
	InstanceType          string
	SubnetID              string
	// PrivateIP is what the Launcher's Boot returned. DescribeInstances no
	// longer shows it once the instance is terminated, as on EC2; the
	// snapshot keeps it.
	PrivateIP string
	State     string // pending, running, shutting-down or terminated
	// ClientToken is the RunInstances idempotency token; the SDK makes one
	// up when its caller gives none, so that its retries launch nothing more.
	ClientToken    string
	KeyName        string
	SecurityGroups []string // ids (sg-…) and names, as requested
	Tags           map[string]string
	UserData       []byte // decoded
	// Metadata is the instance metadata service's settings as requested
	// (MetadataOptions): HttpTokens "required" is IMDSv2 only; EC2's
	// defaults when the request leaves them out.
	Metadata EC2Metadata
	Launched time.Time
	// StateReason says why an instance is terminated: the user asked, its
	// Boot failed, or the simulator was closed.
	StateReason string
}

// EC2Metadata is an instance's MetadataOptions.
type EC2Metadata struct {
	HTTPTokens   string // optional (IMDSv1 allowed) or required (IMDSv2)
	HopLimit     int    // HttpPutResponseHopLimit, 1-64
	HTTPEndpoint string // enabled or disabled
}

// EC2 is a simulated EC2 endpoint served over HTTP on the loopback
// interface. It is safe for concurrent use.
type EC2 struct {
	launcher Launcher
	region   string
	pageSize int
	delay    time.Duration
	amis     map[string]bool // nil: any
	lts      map[string]bool // nil: any
	types    map[string]bool // nil: any well-formed type

	srv       *httptest.Server
	done      chan struct{} // closed by Close: background transitions stop waiting
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu         sync.Mutex
	instances  []*ec2Instance // in creation order
	byID       map[string]*ec2Instance
	byToken    map[string]*ec2Instance
	noCapacity []capacityRule
	throttle   int
	failNext   *ec2Error
	requests   map[string]int
	client     *http.Client // HTTPClient's, made on first use
	transport  *http.Transport
}

// ec2Instance is the simulator's record of an instance; every field but
// booted is guarded by EC2.mu, and ID, Launched and seq never change.
type ec2Instance struct {
	EC2Instance
	seq           int // position in creation order, from 1; pagination keys on it
	reservationID string
	fingerprint   string // the RunInstances parameters, for ClientToken idempotency
	reasonCode    string // stateReason code, "" if none
	transition    string // stateTransitionReason
	booted        chan struct{}
	bootErr       error
	stopped       bool // Stop was called, or must not be (Boot failed)
}

type capacityRule struct{ instanceType, subnet string }

// NewEC2 starts a simulated EC2 endpoint whose instances l boots and stops.
// Close it when done.
func NewEC2(l Launcher, o EC2Options) *EC2 {
	s := &EC2{
		launcher: l,
		region:   o.Region,
		pageSize: o.PageSize,
		delay:    o.BootDelay,
		done:     make(chan struct{}),
		byID:     map[string]*ec2Instance{},
		byToken:  map[string]*ec2Instance{},
		requests: map[string]int{},
	}
	if s.region == "" {
		s.region = defaultEC2Region
	}
	if s.pageSize <= 0 {
		s.pageSize = defaultEC2PageSize
	}
	if s.delay <= 0 {
		s.delay = defaultEC2BootDelay
	}
	if len(o.KnownAMIs) > 0 {
		s.amis = setOf(o.KnownAMIs)
	}
	if len(o.KnownLaunchTemplates) > 0 {
		s.lts = setOf(o.KnownLaunchTemplates)
	}
	if len(o.KnownInstanceTypes) > 0 {
		s.types = setOf(o.KnownInstanceTypes)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL is the endpoint's base URL, for ec2.Options.BaseEndpoint.
func (s *EC2) URL() string { return s.srv.URL }

// Region is the region the endpoint serves.
func (s *EC2) Region() string { return s.region }

// Close stops the server, then Stops every instance the Launcher booted
// that is not stopped yet and marks it terminated. Further calls do nothing.
func (s *EC2) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close() // waits for requests in flight, Boot calls included
		s.mu.Lock()
		if s.transport != nil {
			s.transport.CloseIdleConnections()
		}
		s.mu.Unlock()
		close(s.done)
		s.wg.Wait()

		var stop []string
		s.mu.Lock()
		for _, inst := range s.instances {
			if inst.State != stateTerminated {
				inst.State = stateTerminated
				inst.StateReason = "Client.UserInitiatedShutdown: simulator closed"
				inst.reasonCode = "Client.UserInitiatedShutdown"
			}
			if !inst.stopped {
				inst.stopped = true
				stop = append(stop, inst.ID)
			}
		}
		s.mu.Unlock()
		for _, id := range stop {
			_ = s.launcher.Stop(id) // nothing left to report it to
		}
	})
}

// Terminate terminates a pending or running instance behind its owner's
// back, as a spot interruption or someone at the console does: it shuts
// down (its Launcher host stopped) and is terminated, with reason as its
// state reason. It reports whether there was such an instance.
func (s *EC2) Terminate(id, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inst := range s.instances {
		if inst.ID != id || (inst.State != statePending && inst.State != stateRunning) {
			continue
		}
		code, _, _ := strings.Cut(reason, ":")
		inst.State, inst.reasonCode, inst.StateReason = stateShuttingDown, code, reason
		inst.transition = "Service initiated (" + time.Now().UTC().Format("2006-01-02 15:04:05 MST") + ")"
		s.wg.Add(1)
		go s.shutDown(inst)
		return true
	}
	return false
}

// NoCapacity makes RunInstances of instanceType in subnet fail with
// InsufficientInstanceCapacity (HTTP 500, as EC2 does) until RestoreCapacity
// is called with the same arguments; "" matches any type / any subnet.
//
// The SDK's standard retryer retries HTTP 500s, so one RunInstances call of
// the SDK makes several requests before it returns the error.
func (s *EC2) NoCapacity(instanceType, subnet string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := capacityRule{instanceType, subnet}
	if !slices.Contains(s.noCapacity, r) {
		s.noCapacity = append(s.noCapacity, r)
	}
}

// RestoreCapacity undoes NoCapacity(instanceType, subnet).
func (s *EC2) RestoreCapacity(instanceType, subnet string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noCapacity = slices.DeleteFunc(s.noCapacity, func(r capacityRule) bool {
		return r == capacityRule{instanceType, subnet}
	})
}

// Throttle makes the next n requests (any action) fail with
// RequestLimitExceeded (HTTP 503). It replaces any throttling still pending.
func (s *EC2) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = max(n, 0)
}

// FailNext makes the next RunInstances request fail once with EC2 error code,
// message and HTTP status (for example "Unsupported", "…", 400). It replaces
// a failure still pending.
func (s *EC2) FailNext(code, message string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &ec2Error{status: status, code: code, message: message}
}

// Instances returns a snapshot of every instance (terminated ones
// included), in creation order.
func (s *EC2) Instances() []EC2Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EC2Instance, len(s.instances))
	for i, inst := range s.instances {
		out[i] = inst.snapshot()
	}
	return out
}

// HTTPClient returns an HTTP client for AWS SDK clients of the simulator
// (ec2.Options.HTTPClient). The SDK's default client works too, but
// against a server as fast as a local one it now and then closes a
// connection while reading a response larger than 4 KiB and retries the
// request, which shows as an extra request; this client does not.
//
// (smithy-go's request body answers WriteTo with io.EOF once closed, and the
// SDK closes it as soon as the response headers arrive, which can be before
// net/http has finished its last read of the body: net/http takes the EOF
// for a write error and closes the connection under the response.)
func (s *EC2) HTTPClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // the simulator is always local
		s.transport = tr
		s.client = &http.Client{Transport: plainBodyTransport{tr}}
	}
	return s.client
}

// plainBodyTransport hides all but Read and Close of request bodies from
// the transport beneath it.
type plainBodyTransport struct{ base http.RoundTripper }

func (t plainBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return t.base.RoundTrip(r)
}

// Requests counts the requests received for action (throttled and failed
// ones included).
func (s *EC2) Requests(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[action]
}

func (inst *ec2Instance) snapshot() EC2Instance {
	c := inst.EC2Instance
	c.SecurityGroups = slices.Clone(inst.SecurityGroups)
	c.UserData = slices.Clone(inst.UserData)
	c.Tags = make(map[string]string, len(inst.Tags))
	for k, v := range inst.Tags {
		c.Tags[k] = v
	}
	return c
}

// ec2Error is an EC2 error response.
type ec2Error struct {
	status        int
	code, message string
}

func (e *ec2Error) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, args ...any) *ec2Error {
	return &ec2Error{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func invalidValue(param, value string) *ec2Error {
	return badRequest("InvalidParameterValue", "Invalid value '%s' for %s.", value, param)
}

func missing(param string) *ec2Error {
	return badRequest("MissingParameter", "The request must contain the parameter %s", param)
}

var errDryRun = &ec2Error{
	status:  http.StatusPreconditionFailed,
	code:    "DryRunOperation",
	message: "Request would have succeeded, but DryRun flag is set.",
}

// serveHTTP answers one Query API request.
func (s *EC2) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	resp, err := s.handle(w, r, reqID)
	if err != nil {
		writeError(w, reqID, err)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(resp)
}

func (s *EC2) handle(w http.ResponseWriter, r *http.Request, reqID string) (any, *ec2Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &ec2Error{http.StatusMethodNotAllowed, "InvalidRequest",
			"The simulated EC2 endpoint accepts only POST requests."}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, &ec2Error{http.StatusUnsupportedMediaType, "InvalidRequest",
			"The request body must be application/x-www-form-urlencoded."}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if err := r.ParseForm(); err != nil {
		return nil, badRequest("InvalidRequest", "The request body is not a valid form: %v", err)
	}
	form := r.Form
	action := form.Get("Action")

	s.mu.Lock()
	s.requests[action]++
	s.mu.Unlock()
	if err := checkAuth(r.Header.Get("Authorization"), s.region); err != nil {
		return nil, err
	}
	s.mu.Lock()
	throttled := s.throttle > 0
	if throttled {
		s.throttle--
	}
	s.mu.Unlock()
	if throttled {
		return nil, &ec2Error{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."}
	}

	if action == "" {
		return nil, badRequest("MissingAction", "The request must contain the parameter Action")
	}
	if form.Get("Version") == "" {
		return nil, missing("Version")
	}
	switch action {
	case "RunInstances":
		return s.runInstances(form, reqID)
	case "DescribeInstances":
		return s.describeInstances(form, reqID)
	case "TerminateInstances":
		return s.terminateInstances(form, reqID)
	case "DescribeImages":
		return s.describeImages(form, reqID)
	case "DescribeInstanceTypes":
		return s.describeInstanceTypes(form, reqID)
	default:
		return nil, badRequest("InvalidAction", "The action %s is not valid for this web service.", action)
	}
}

// checkAuth requires a signature, without verifying it, and a SigV4
// credential scope, when there is one, for this region and for ec2.
func checkAuth(header, region string) *ec2Error {
	fail := func(msg string) *ec2Error {
		return &ec2Error{http.StatusUnauthorized, "AuthFailure", msg}
	}
	if strings.TrimSpace(header) == "" {
		return fail("AWS was not able to validate the provided access credentials")
	}
	_, rest, ok := strings.Cut(header, "Credential=")
	if !ok {
		return nil
	}
	cred, _, _ := strings.Cut(rest, ",")
	// AKID/yyyymmdd/region/service/aws4_request
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return nil
	}
	if parts[2] != region {
		return fail(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", parts[2]))
	}
	if parts[3] != "ec2" {
		return fail("Credential should be scoped to correct service: 'ec2'.")
	}
	return nil
}

func writeError(w http.ResponseWriter, reqID string, e *ec2Error) {
	doc := xmlErrorResponse{
		Errors:    []xmlError{{Code: e.code, Message: e.message}},
		RequestID: reqID,
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(doc)
}

// runParams are the RunInstances parameters the simulator understands.
type runParams struct {
	imageID, ltID, ltName, ltVersion string
	instanceType, subnetID, keyName  string
	clientToken                      string
	groups                           []string
	tags                             map[string]string
	userData                         []byte
	metadata                         EC2Metadata
	dryRun                           bool
}

func parseRunParams(form url.Values) (*runParams, *ec2Error) {
	p := &runParams{
		imageID:      form.Get("ImageId"),
		ltID:         form.Get("LaunchTemplate.LaunchTemplateId"),
		ltName:       form.Get("LaunchTemplate.LaunchTemplateName"),
		ltVersion:    form.Get("LaunchTemplate.Version"),
		instanceType: form.Get("InstanceType"),
		subnetID:     form.Get("SubnetId"),
		keyName:      form.Get("KeyName"),
		clientToken:  form.Get("ClientToken"),
		tags:         map[string]string{},
	}
	var err *ec2Error
	if p.dryRun, err = parseBool(form, "DryRun"); err != nil {
		return nil, err
	}

	hasLT := hasPrefix(form, "LaunchTemplate.")
	switch {
	case hasLT && p.ltID != "" && p.ltName != "":
		return nil, badRequest("InvalidParameterCombination",
			"Only one of LaunchTemplateId or LaunchTemplateName may be specified.")
	case hasLT && p.ltID == "" && p.ltName == "":
		return nil, missing("LaunchTemplateId or LaunchTemplateName")
	case !hasLT && p.imageID == "":
		return nil, missing("ImageId")
	}
	if p.imageID != "" && !strings.HasPrefix(p.imageID, "ami-") {
		return nil, badRequest("InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", p.imageID)
	}
	if p.ltID != "" && !strings.HasPrefix(p.ltID, "lt-") {
		return nil, badRequest("InvalidLaunchTemplateId.Malformed",
			"The specified launch template ID %s is not valid.", p.ltID)
	}
	if p.instanceType == "" && !hasLT {
		p.instanceType = defaultInstanceType
	}
	if p.instanceType != "" && !instanceTypeRE.MatchString(p.instanceType) {
		return nil, invalidValue("InstanceType", p.instanceType)
	}

	for _, name := range []string{"MinCount", "MaxCount"} {
		v := form.Get(name)
		if v == "" {
			return nil, missing(name)
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			return nil, invalidValue(name, v)
		}
		if n != 1 {
			return nil, badRequest("InvalidParameterValue",
				"Value (%d) for parameter %s is not supported: the simulator launches one instance per request.", n, name)
		}
	}

	// The subnet and security groups come either from the request or from
	// its primary network interface, never both.
	groups := append(members(form, "SecurityGroupId"), members(form, "SecurityGroup")...)
	if nis := indices(form, "NetworkInterface"); len(nis) > 0 {
		if p.subnetID != "" || len(groups) > 0 {
			return nil, badRequest("InvalidParameterCombination",
				"Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request")
		}
		prefix := "NetworkInterface." + strconv.Itoa(nis[0])
		p.subnetID = form.Get(prefix + ".SubnetId")
		groups = members(form, prefix+".SecurityGroupId")
	}
	if p.subnetID != "" && !strings.HasPrefix(p.subnetID, "subnet-") {
		return nil, badRequest("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", p.subnetID)
	}
	for _, g := range groups {
		if g == "" {
			return nil, invalidValue("SecurityGroupId", g)
		}
		if !slices.Contains(p.groups, g) {
			p.groups = append(p.groups, g)
		}
	}

	if ud, ok := form["UserData"]; ok && len(ud) > 0 && ud[0] != "" {
		data, derr := base64.StdEncoding.DecodeString(ud[0])
		if derr != nil {
			return nil, badRequest("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
		if len(data) > maxUserData {
			return nil, badRequest("InvalidParameterValue", "User data is limited to %d bytes", maxUserData)
		}
		p.userData = data
	}

	p.metadata = EC2Metadata{HTTPTokens: "optional", HopLimit: 1, HTTPEndpoint: "enabled"}
	if v := form.Get("MetadataOptions.HttpTokens"); v != "" {
		if v != "optional" && v != "required" {
			return nil, invalidValue("MetadataOptions.HttpTokens", v)
		}
		p.metadata.HTTPTokens = v
	}
	if v := form.Get("MetadataOptions.HttpPutResponseHopLimit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 64 {
			return nil, invalidValue("MetadataOptions.HttpPutResponseHopLimit", v)
		}
		p.metadata.HopLimit = n
	}
	if v := form.Get("MetadataOptions.HttpEndpoint"); v != "" {
		if v != "enabled" && v != "disabled" {
			return nil, invalidValue("MetadataOptions.HttpEndpoint", v)
		}
		p.metadata.HTTPEndpoint = v
	}

	if len(p.clientToken) > maxClientToken {
		return nil, badRequest("InvalidParameterValue",
			"Value (%s) for parameter clientToken is invalid. Length exceeds maximum of %d.", p.clientToken, maxClientToken)
	}

	for _, n := range indices(form, "TagSpecification") {
		prefix := "TagSpecification." + strconv.Itoa(n)
		rt := form.Get(prefix + ".ResourceType")
		if !taggable[rt] {
			return nil, invalidValue("ResourceType", rt)
		}
		seen := map[string]bool{}
		for _, m := range indices(form, prefix+".Tag") {
			tp := prefix + ".Tag." + strconv.Itoa(m)
			k, v := form.Get(tp+".Key"), form.Get(tp+".Value")
			switch {
			case k == "":
				return nil, badRequest("InvalidParameterValue", "Tag keys must not be empty.")
			case strings.HasPrefix(strings.ToLower(k), "aws:"):
				return nil, badRequest("InvalidParameterValue",
					"Tag keys starting with 'aws:' are reserved for internal use")
			case seen[k]:
				return nil, badRequest("InvalidParameterValue", "Duplicate tag key '%s' specified.", k)
			}
			seen[k] = true
			if rt == "instance" {
				p.tags[k] = v
			}
		}
		if len(seen) > maxTags {
			return nil, badRequest("TagLimitExceeded", "The maximum number of tags for a resource is %d.", maxTags)
		}
	}
	return p, nil
}

var instanceTypeRE = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)

// taggable are the resource types RunInstances accepts in a
// TagSpecification; only the instance's tags are kept.
var taggable = map[string]bool{
	"instance": true, "volume": true, "network-interface": true,
	"spot-instances-request": true, "elastic-gpu": true,
}

// fingerprint identifies a RunInstances request's parameters, bar those
// that do not change what it launches.
func fingerprint(form url.Values) string {
	var b strings.Builder
	keys := make([]string, 0, len(form))
	for k := range form {
		switch k {
		case "Action", "Version", "ClientToken", "DryRun":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, form[k])
	}
	return b.String()
}

func (s *EC2) runInstances(form url.Values, reqID string) (any, *ec2Error) {
	s.mu.Lock()
	injected := s.failNext
	s.failNext = nil
	s.mu.Unlock()
	if injected != nil {
		return nil, injected
	}

	p, err := parseRunParams(form)
	if err != nil {
		return nil, err
	}
	fp := fingerprint(form)

	s.mu.Lock()
	if p.clientToken != "" {
		if prev, ok := s.byToken[p.clientToken]; ok {
			defer s.mu.Unlock()
			if prev.fingerprint != fp {
				return nil, badRequest("IdempotentParameterMismatch",
					"Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			if p.dryRun {
				return nil, errDryRun
			}
			return s.runResponse(prev, reqID), nil
		}
	}
	if err := s.checkKnown(p); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if p.dryRun {
		s.mu.Unlock()
		return nil, errDryRun
	}
	if s.outOfCapacity(p.instanceType, p.subnetID) {
		s.mu.Unlock()
		az := s.zone(p.subnetID)
		return nil, &ec2Error{http.StatusInternalServerError, "InsufficientInstanceCapacity", fmt.Sprintf(
			"We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). "+
				"Our system will be working on provisioning additional capacity.", p.instanceType, az)}
	}
	inst := s.newInstance(p, fp)
	s.mu.Unlock()

	ip, bootErr := s.launcher.Boot(inst.ID, slices.Clone(p.userData))

	s.mu.Lock()
	inst.bootErr = bootErr
	if bootErr == nil {
		inst.PrivateIP = ip
	} else {
		inst.stopped = true // nothing to Stop
	}
	close(inst.booted)
	resp := s.runResponse(inst, reqID)
	s.wg.Add(1)
	s.mu.Unlock()

	go s.finishBoot(inst)
	return resp, nil
}

// describeInstanceTypes answers for the types named by InstanceType.N,
// failing one the region does not offer with InvalidInstanceType.
func (s *EC2) describeInstanceTypes(form url.Values, reqID string) (any, *ec2Error) {
	resp := &xmlDescribeInstanceTypesResponse{RequestID: reqID}
	for _, t := range members(form, "InstanceType") {
		if !instanceTypeRE.MatchString(t) || (s.types != nil && !s.types[t]) {
			return nil, badRequest("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", t)
		}
		resp.Types = append(resp.Types, xmlInstanceType{InstanceType: t})
	}
	return resp, nil
}

// describeImages answers for the images named by ImageId.N: each must be
// known (any well-formed one when KnownAMIs is empty), as EC2 fails an ID
// it does not know with InvalidAMIID.NotFound.
func (s *EC2) describeImages(form url.Values, reqID string) (any, *ec2Error) {
	resp := &xmlDescribeImagesResponse{RequestID: reqID}
	for _, id := range members(form, "ImageId") {
		if !strings.HasPrefix(id, "ami-") || len(id) < 12 {
			return nil, badRequest("InvalidAMIID.Malformed", "Invalid id: %q", id)
		}
		if s.amis != nil && !s.amis[id] {
			return nil, badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
		resp.Images = append(resp.Images, xmlImage{ImageID: id, ImageState: "available", Name: "msm-" + id, Architecture: "x86_64", OwnerID: EC2OwnerID})
	}
	return resp, nil
}

// checkKnown fails an image or launch template the simulator does not know.
func (s *EC2) checkKnown(p *runParams) *ec2Error {
	if p.instanceType != "" && s.types != nil && !s.types[p.instanceType] {
		return badRequest("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", p.instanceType)
	}
	if p.imageID != "" && s.amis != nil && !s.amis[p.imageID] {
		return badRequest("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", p.imageID)
	}
	if s.lts == nil {
		return nil
	}
	if p.ltID != "" && !s.lts[p.ltID] {
		return badRequest("InvalidLaunchTemplateId.NotFound",
			"The specified launch template, with template ID %s, does not exist.", p.ltID)
	}
	if p.ltName != "" && !s.lts[p.ltName] {
		return badRequest("InvalidLaunchTemplateName.NotFoundException",
			"The specified launch template, with template name %s, does not exist.", p.ltName)
	}
	return nil
}

// outOfCapacity reports whether a NoCapacity rule matches; s.mu is held.
func (s *EC2) outOfCapacity(instanceType, subnet string) bool {
	for _, r := range s.noCapacity {
		if (r.instanceType == "" || r.instanceType == instanceType) && (r.subnet == "" || r.subnet == subnet) {
			return true
		}
	}
	return false
}

// newInstance records a pending instance; s.mu is held.
func (s *EC2) newInstance(p *runParams, fp string) *ec2Instance {
	id := s.newID("i-")
	lt := p.ltID
	if lt == "" {
		lt = p.ltName
	}
	inst := &ec2Instance{
		EC2Instance: EC2Instance{
			ID:                    id,
			ImageID:               p.imageID,
			LaunchTemplate:        lt,
			LaunchTemplateVersion: p.ltVersion,
			InstanceType:          p.instanceType,
			SubnetID:              p.subnetID,
			State:                 statePending,
			ClientToken:           p.clientToken,
			KeyName:               p.keyName,
			SecurityGroups:        p.groups,
			Tags:                  p.tags,
			UserData:              p.userData,
			Metadata:              p.metadata,
			Launched:              time.Now().UTC().Truncate(time.Millisecond),
		},
		seq:           len(s.instances) + 1,
		reservationID: s.newID("r-"),
		fingerprint:   fp,
		booted:        make(chan struct{}),
	}
	s.instances = append(s.instances, inst)
	s.byID[id] = inst
	if p.clientToken != "" {
		s.byToken[p.clientToken] = inst
	}
	return inst
}

// newID returns an unused id like i-0123456789abcdef0: the prefix and 17
// hex digits. s.mu is held.
func (s *EC2) newID(prefix string) string {
	for {
		id := fmt.Sprintf("%s0%016x", prefix, rand.Uint64())
		if _, dup := s.byID[id]; !dup {
			if prefix != "r-" || !s.reservationExists(id) {
				return id
			}
		}
	}
}

func (s *EC2) reservationExists(id string) bool {
	for _, inst := range s.instances {
		if inst.reservationID == id {
			return true
		}
	}
	return false
}

// finishBoot moves a pending instance on after the boot delay: to running,
// or to terminated if its Boot failed.
func (s *EC2) finishBoot(inst *ec2Instance) {
	defer s.wg.Done()
	s.sleep(time.Until(inst.Launched.Add(s.delay)))

	s.mu.Lock()
	defer s.mu.Unlock()
	if inst.State != statePending {
		return // terminated meanwhile
	}
	if inst.bootErr == nil {
		inst.State = stateRunning
		return
	}
	inst.State = stateTerminated
	inst.reasonCode = "Server.InternalError"
	inst.StateReason = "Server.InternalError: Internal error on launch (" + inst.bootErr.Error() + ")"
	inst.transition = "Server.InternalError: Internal error on launch"
}

// sleep waits d, or less if the simulator is closed.
func (s *EC2) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// zone is the availability zone of a subnet: one of the region's a, b or c.
func (s *EC2) zone(subnet string) string {
	if subnet == "" {
		return s.region + "a"
	}
	h := fnv.New32a()
	h.Write([]byte(subnet))
	return s.region + string(rune('a'+h.Sum32()%3))
}

func (s *EC2) runResponse(inst *ec2Instance, reqID string) *xmlRunInstancesResponse {
	return &xmlRunInstancesResponse{RequestID: reqID, xmlReservation: s.reservation(inst)}
}

// reservation renders the reservation of inst; s.mu is held.
func (s *EC2) reservation(inst *ec2Instance) xmlReservation {
	return xmlReservation{
		ReservationID: inst.reservationID,
		OwnerID:       EC2OwnerID,
		Instances:     []xmlInstance{s.render(inst)},
	}
}

// render renders inst as DescribeInstances shows it; s.mu is held.
func (s *EC2) render(inst *ec2Instance) xmlInstance {
	x := xmlInstance{
		InstanceID:         inst.ID,
		ImageID:            inst.ImageID,
		State:              xmlState(inst.State),
		Reason:             inst.transition,
		KeyName:            inst.KeyName,
		InstanceType:       inst.InstanceType,
		LaunchTime:         inst.Launched.Format("2006-01-02T15:04:05.000Z"),
		Placement:          xmlPlacement{AvailabilityZone: s.zone(inst.SubnetID), Tenancy: "default"},
		Monitoring:         xmlMonitoring{State: "disabled"},
		SubnetID:           inst.SubnetID,
		Architecture:       "x86_64",
		RootDeviceType:     "ebs",
		VirtualizationType: "hvm",
		Hypervisor:         "xen",
		ClientToken:        inst.ClientToken,
	}
	if inst.State != stateTerminated && inst.PrivateIP != "" {
		x.PrivateIP = inst.PrivateIP
		x.PrivateDNSName = s.privateDNSName(inst.PrivateIP)
	}
	for _, g := range inst.SecurityGroups {
		if strings.HasPrefix(g, "sg-") {
			x.Groups = append(x.Groups, xmlGroup{GroupID: g})
		} else {
			x.Groups = append(x.Groups, xmlGroup{GroupName: g})
		}
	}
	if inst.reasonCode != "" {
		x.StateReason = &xmlStateReason{Code: inst.reasonCode, Message: inst.StateReason}
	}
	keys := make([]string, 0, len(inst.Tags))
	for k := range inst.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: inst.Tags[k]})
	}
	return x
}

func (s *EC2) privateDNSName(ip string) string {
	host := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if s.region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + s.region + ".compute.internal"
}

func xmlState(name string) xmlInstanceState {
	return xmlInstanceState{Code: stateCodes[name], Name: name}
}

var instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// instanceIDs returns the request's InstanceId.N, without duplicates,
// failing a malformed one.
func instanceIDs(form url.Values) ([]string, *ec2Error) {
	var ids []string
	for _, id := range members(form, "InstanceId") {
		if !instanceIDRE.MatchString(id) {
			return nil, badRequest("InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// lookup returns the instances of ids, or InvalidInstanceID.NotFound naming
// those that do not exist; s.mu is held.
func (s *EC2) lookup(ids []string) ([]*ec2Instance, *ec2Error) {
	var found []*ec2Instance
	var unknown []string
	for _, id := range ids {
		if inst, ok := s.byID[id]; ok {
			found = append(found, inst)
		} else {
			unknown = append(unknown, id)
		}
	}
	switch len(unknown) {
	case 0:
		return found, nil
	case 1:
		return nil, badRequest("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", unknown[0])
	default:
		return nil, badRequest("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist",
			strings.Join(unknown, ", "))
	}
}

// filter is one DescribeInstances filter: an instance matches when one of
// its values for the filter's name matches one of the filter's values.
type filter struct {
	name   string
	values []string
}

// filterFields gives, for each filter name, the values an instance has for
// it. tag:<key> is handled apart.
var filterFields = map[string]func(s *EC2, inst *ec2Instance) []string{
	"instance-state-name": func(_ *EC2, i *ec2Instance) []string { return []string{i.State} },
	"instance-state-code": func(_ *EC2, i *ec2Instance) []string {
		return []string{strconv.Itoa(stateCodes[i.State])}
	},
	"instance-id":        func(_ *EC2, i *ec2Instance) []string { return []string{i.ID} },
	"instance-type":      func(_ *EC2, i *ec2Instance) []string { return []string{i.InstanceType} },
	"subnet-id":          func(_ *EC2, i *ec2Instance) []string { return []string{i.SubnetID} },
	"client-token":       func(_ *EC2, i *ec2Instance) []string { return []string{i.ClientToken} },
	"image-id":           func(_ *EC2, i *ec2Instance) []string { return []string{i.ImageID} },
	"key-name":           func(_ *EC2, i *ec2Instance) []string { return []string{i.KeyName} },
	"reservation-id":     func(_ *EC2, i *ec2Instance) []string { return []string{i.reservationID} },
	"private-ip-address": func(_ *EC2, i *ec2Instance) []string { return []string{i.PrivateIP} },
	"availability-zone":  func(s *EC2, i *ec2Instance) []string { return []string{s.zone(i.SubnetID)} },
	"instance.group-id":  func(_ *EC2, i *ec2Instance) []string { return i.SecurityGroups },
	"tag-key": func(_ *EC2, i *ec2Instance) []string {
		keys := make([]string, 0, len(i.Tags))
		for k := range i.Tags {
			keys = append(keys, k)
		}
		return keys
	},
	"tag-value": func(_ *EC2, i *ec2Instance) []string {
		vals := make([]string, 0, len(i.Tags))
		for _, v := range i.Tags {
			vals = append(vals, v)
		}
		return vals
	},
}

func parseFilters(form url.Values) ([]filter, *ec2Error) {
	var fs []filter
	for _, n := range indices(form, "Filter") {
		prefix := "Filter." + strconv.Itoa(n)
		f := filter{name: form.Get(prefix + ".Name"), values: members(form, prefix+".Value")}
		if _, ok := filterFields[f.name]; !ok && !(strings.HasPrefix(f.name, "tag:") && len(f.name) > len("tag:")) {
			return nil, badRequest("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		if len(f.values) == 0 {
			return nil, badRequest("InvalidParameterValue", "The filter '%s' requires at least one value", f.name)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// matches reports whether inst passes every filter; s.mu is held.
func (s *EC2) matches(inst *ec2Instance, fs []filter) bool {
	for _, f := range fs {
		var have []string
		if key, ok := strings.CutPrefix(f.name, "tag:"); ok {
			v, tagged := inst.Tags[key]
			if !tagged {
				return false
			}
			have = []string{v}
		} else {
			have = filterFields[f.name](s, inst)
		}
		if !slices.ContainsFunc(have, func(h string) bool {
			return slices.ContainsFunc(f.values, func(p string) bool { return glob(p, h) })
		}) {
			return false
		}
	}
	return true
}

// glob matches s against an EC2 filter value: * matches any run of
// characters, ? any one character, and \ escapes the next character.
func glob(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	var pi, ti int
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case pi < len(p) && p[pi] == '?':
			pi++
			ti++
		case pi+1 < len(p) && p[pi] == '\\' && p[pi+1] == t[ti]:
			pi += 2
			ti++
		case pi < len(p) && p[pi] != '\\' && p[pi] == t[ti]:
			pi++
			ti++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func (s *EC2) describeInstances(form url.Values, reqID string) (any, *ec2Error) {
	dryRun, err := parseBool(form, "DryRun")
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(form)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(form)
	if err != nil {
		return nil, err
	}
	limit := 0 // none
	if v := form.Get("MaxResults"); v != "" {
		if len(ids) > 0 {
			return nil, badRequest("InvalidParameterCombination",
				"The parameter instancesSet cannot be used with the parameter maxResults")
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < minMaxResults || n > maxMaxResults {
			return nil, badRequest("InvalidParameterValue",
				"Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.",
				v, minMaxResults, maxMaxResults)
		}
		limit = n
	} else if len(ids) == 0 {
		limit = s.pageSize
	}
	after := 0
	if tok := form.Get("NextToken"); tok != "" {
		if after = decodeToken(tok); after <= 0 {
			return nil, invalidValue("nextToken", tok)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	candidates := s.instances
	if len(ids) > 0 {
		if candidates, err = s.lookup(ids); err != nil {
			return nil, err
		}
	}
	if dryRun {
		return nil, errDryRun
	}
	resp := &xmlDescribeInstancesResponse{RequestID: reqID}
	for _, inst := range candidates {
		if inst.seq <= after || !s.matches(inst, fs) {
			continue
		}
		if limit > 0 && len(resp.Reservations) == limit {
			resp.NextToken = encodeToken(after)
			break
		}
		resp.Reservations = append(resp.Reservations, s.reservation(inst))
		after = inst.seq
	}
	return resp, nil
}

// A NextToken holds the creation sequence number of the last instance a
// page showed: instances are never removed, so the next page starts after it.
func encodeToken(seq int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("seq:" + strconv.Itoa(seq)))
}

func decodeToken(tok string) int {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0
	}
	v, ok := strings.CutPrefix(string(b), "seq:")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

func (s *EC2) terminateInstances(form url.Values, reqID string) (any, *ec2Error) {
	dryRun, err := parseBool(form, "DryRun")
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(form)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, missing("InstanceId")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	insts, err := s.lookup(ids)
	if err != nil {
		return nil, err
	}
	if dryRun {
		return nil, errDryRun
	}
	resp := &xmlTerminateInstancesResponse{RequestID: reqID}
	now := time.Now().UTC().Format("2006-01-02 15:04:05 MST")
	for _, inst := range insts {
		prev := inst.State
		if prev == statePending || prev == stateRunning {
			inst.State = stateShuttingDown
			inst.transition = "User initiated (" + now + ")"
			inst.reasonCode = "Client.UserInitiatedShutdown"
			inst.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
			s.wg.Add(1)
			go s.shutDown(inst)
		}
		resp.Instances = append(resp.Instances, xmlStateChange{
			InstanceID:    inst.ID,
			CurrentState:  xmlState(inst.State),
			PreviousState: xmlState(prev),
		})
	}
	return resp, nil
}

// shutDown Stops a shutting-down instance, once its Boot has returned, and
// marks it terminated after the boot delay.
func (s *EC2) shutDown(inst *ec2Instance) {
	defer s.wg.Done()
	<-inst.booted

	s.mu.Lock()
	stop := !inst.stopped
	inst.stopped = true
	s.mu.Unlock()
	if stop {
		// EC2 terminates an instance whatever its OS does, so a failed
		// Stop does not keep it alive.
		_ = s.launcher.Stop(inst.ID)
	}

	s.sleep(s.delay)
	s.mu.Lock()
	inst.State = stateTerminated
	s.mu.Unlock()
}

// indices returns, in order, the distinct list indices N of the request's
// keys name.N and name.N.….
func indices(form url.Values, name string) []int {
	var out []int
	for k := range form {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || slices.Contains(out, n) {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// members returns the values of the list name.1, name.2, …, in order.
func members(form url.Values, name string) []string {
	var out []string
	for _, n := range indices(form, name) {
		if v, ok := form[name+"."+strconv.Itoa(n)]; ok && len(v) > 0 {
			out = append(out, v[0])
		}
	}
	return out
}

func hasPrefix(form url.Values, prefix string) bool {
	for k := range form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func parseBool(form url.Values, name string) (bool, *ec2Error) {
	v := form.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalidValue(name, v)
	}
	return b, nil
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// newRequestID returns a random request id shaped like EC2's (a UUID).
func newRequestID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// The XML documents of the Query API, element names as EC2 spells them.

type xmlErrorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xmlRunInstancesResponse struct {
	XMLName   xml.Name `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ RunInstancesResponse"`
	RequestID string   `xml:"requestId"`
	xmlReservation
}

type xmlDescribeInstancesResponse struct {
	XMLName      xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type xmlDescribeInstanceTypesResponse struct {
	XMLName   xml.Name          `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstanceTypesResponse"`
	RequestID string            `xml:"requestId"`
	Types     []xmlInstanceType `xml:"instanceTypeSet>item"`
}

type xmlInstanceType struct {
	InstanceType string `xml:"instanceType"`
}

type xmlDescribeImagesResponse struct {
	XMLName   xml.Name   `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeImagesResponse"`
	RequestID string     `xml:"requestId"`
	Images    []xmlImage `xml:"imagesSet>item"`
}

type xmlImage struct {
	ImageID      string `xml:"imageId"`
	ImageState   string `xml:"imageState"`
	Name         string `xml:"name"`
	Architecture string `xml:"architecture"`
	OwnerID      string `xml:"imageOwnerId"`
}

type xmlTerminateInstancesResponse struct {
	XMLName   xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ TerminateInstancesResponse"`
	RequestID string           `xml:"requestId"`
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlInstance struct {
	InstanceID         string           `xml:"instanceId"`
	ImageID            string           `xml:"imageId,omitempty"`
	State              xmlInstanceState `xml:"instanceState"`
	PrivateDNSName     string           `xml:"privateDnsName"`
	DNSName            string           `xml:"dnsName"`
	Reason             string           `xml:"reason"`
	KeyName            string           `xml:"keyName,omitempty"`
	AMILaunchIndex     int              `xml:"amiLaunchIndex"`
	InstanceType       string           `xml:"instanceType,omitempty"`
	LaunchTime         string           `xml:"launchTime"`
	Placement          xmlPlacement     `xml:"placement"`
	Monitoring         xmlMonitoring    `xml:"monitoring"`
	SubnetID           string           `xml:"subnetId,omitempty"`
	PrivateIP          string           `xml:"privateIpAddress,omitempty"`
	Groups             []xmlGroup       `xml:"groupSet>item"`
	StateReason        *xmlStateReason  `xml:"stateReason,omitempty"`
	Architecture       string           `xml:"architecture"`
	RootDeviceType     string           `xml:"rootDeviceType"`
	VirtualizationType string           `xml:"virtualizationType"`
	ClientToken        string           `xml:"clientToken,omitempty"`
	Tags               []xmlTag         `xml:"tagSet>item"`
	Hypervisor         string           `xml:"hypervisor"`
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlMonitoring struct {
	State string `xml:"state"`
}

type xmlGroup struct {
	GroupID   string `xml:"groupId,omitempty"`
	GroupName string `xml:"groupName,omitempty"`
}

type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlStateChange struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  xmlInstanceState `xml:"currentState"`
	PreviousState xmlInstanceState `xml:"previousState"`
}
