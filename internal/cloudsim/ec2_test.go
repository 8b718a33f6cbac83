package cloudsim

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeLauncher records Boot and Stop calls; the Nth Boot returns 10.0.0.N,
// and a Boot whose user data is "fail" fails.
type fakeLauncher struct {
	mu    sync.Mutex
	boots []bootCall
	stops []string
}

type bootCall struct {
	id       string
	userData []byte
}

func (f *fakeLauncher) Boot(id string, userData []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boots = append(f.boots, bootCall{id, userData})
	if string(userData) == "fail" {
		return "", errors.New("kernel panic")
	}
	return fmt.Sprintf("10.0.0.%d", len(f.boots)), nil
}

func (f *fakeLauncher) Stop(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, id)
	return nil
}

func (f *fakeLauncher) Boots() []bootCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bootCall(nil), f.boots...)
}

func (f *fakeLauncher) Stops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stops...)
}

// newSim starts a simulator with a fake launcher and returns an SDK client
// for it, whose standard retryer backs off for milliseconds, not seconds,
// and whose HTTP client makes request counts exact (see EC2.HTTPClient).
func newSim(t *testing.T, o EC2Options) (*EC2, *fakeLauncher, *ec2.Client) {
	t.Helper()
	l := &fakeLauncher{}
	sim := NewEC2(l, o)
	t.Cleanup(sim.Close)
	return sim, l, newClient(sim)
}

func newClient(sim *EC2) *ec2.Client {
	cfg := aws.Config{
		Region:      sim.Region(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(sim.URL())
		o.HTTPClient = sim.HTTPClient()
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxBackoff = 10 * time.Millisecond
		})
	})
}

// runInput is a valid one-instance RunInstances request.
func runInput(mods ...func(*ec2.RunInstancesInput)) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String("ami-0123456789abcdef0"),
		InstanceType: types.InstanceTypeT3Micro,
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		SubnetId:     aws.String("subnet-0aaa"),
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

func withTags(kv ...string) func(*ec2.RunInstancesInput) {
	return func(in *ec2.RunInstancesInput) {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for i := 0; i < len(kv); i += 2 {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		in.TagSpecifications = append(in.TagSpecifications, spec)
	}
}

func run(t *testing.T, c *ec2.Client, mods ...func(*ec2.RunInstancesInput)) types.Instance {
	t.Helper()
	out, err := c.RunInstances(context.Background(), runInput(mods...))
	require.NoError(t, err)
	require.Len(t, out.Instances, 1)
	return out.Instances[0]
}

func describe(t *testing.T, c *ec2.Client, in *ec2.DescribeInstancesInput) []types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), in)
	require.NoError(t, err)
	var insts []types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	return insts
}

func waitRunning(t *testing.T, c *ec2.Client, ids ...string) {
	t.Helper()
	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = 10 * time.Millisecond
		o.MaxDelay = 50 * time.Millisecond
	})
	require.NoError(t, w.Wait(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids}, 10*time.Second))
}

// apiCode is the EC2 error code the SDK parsed from an error response.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of the response an error came from.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, tg := range tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func TestRunAndDescribe(t *testing.T) {
	sim, l, c := newSim(t, EC2Options{})
	start := time.Now().Add(-time.Second)

	inst := run(t, c, withTags("Name", "web-1", "msm:pool", "web"), func(in *ec2.RunInstancesInput) {
		in.SecurityGroupIds = []string{"sg-0001", "sg-0002"}
		in.KeyName = aws.String("ops")
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n")))
	})

	id := aws.ToString(inst.InstanceId)
	assert.Regexp(t, `^i-[0-9a-f]{17}$`, id)
	assert.Equal(t, types.InstanceStateNamePending, inst.State.Name)
	assert.Equal(t, int32(0), aws.ToInt32(inst.State.Code))
	assert.Equal(t, "10.0.0.1", aws.ToString(inst.PrivateIpAddress))

	require.Equal(t, []bootCall{{id, []byte("#!/bin/sh\necho hi\n")}}, l.Boots())

	waitRunning(t, c, id)
	got := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.Len(t, got, 1)
	d := got[0]
	assert.Equal(t, id, aws.ToString(d.InstanceId))
	assert.Equal(t, "ami-0123456789abcdef0", aws.ToString(d.ImageId))
	assert.Equal(t, types.InstanceTypeT3Micro, d.InstanceType)
	assert.Equal(t, "subnet-0aaa", aws.ToString(d.SubnetId))
	assert.Equal(t, "10.0.0.1", aws.ToString(d.PrivateIpAddress))
	assert.Equal(t, "ip-10-0-0-1.ec2.internal", aws.ToString(d.PrivateDnsName))
	assert.Equal(t, "ops", aws.ToString(d.KeyName))
	assert.Equal(t, types.InstanceStateNameRunning, d.State.Name)
	assert.Equal(t, int32(16), aws.ToInt32(d.State.Code))
	assert.Equal(t, map[string]string{"Name": "web-1", "msm:pool": "web"}, tagMap(d.Tags))
	assert.Regexp(t, `^us-east-1[abc]$`, aws.ToString(d.Placement.AvailabilityZone))
	require.Len(t, d.SecurityGroups, 2)
	assert.Equal(t, "sg-0001", aws.ToString(d.SecurityGroups[0].GroupId))
	require.NotNil(t, d.LaunchTime)
	assert.WithinRange(t, *d.LaunchTime, start, time.Now().Add(time.Second))

	snap := sim.Instances()
	require.Len(t, snap, 1)
	assert.Equal(t, EC2Instance{
		ID: id, ImageID: "ami-0123456789abcdef0", InstanceType: "t3.micro", SubnetID: "subnet-0aaa",
		PrivateIP: "10.0.0.1", State: "running", KeyName: "ops",
		ClientToken: snap[0].ClientToken, // the SDK makes one up

		SecurityGroups: []string{"sg-0001", "sg-0002"},
		Tags:           map[string]string{"Name": "web-1", "msm:pool": "web"},
		UserData:       []byte("#!/bin/sh\necho hi\n"),
		Metadata:       EC2Metadata{HTTPTokens: "optional", HopLimit: 1, HTTPEndpoint: "enabled"}, // EC2's defaults
		Launched:       snap[0].Launched,
	}, snap[0])
	assert.Equal(t, 1, sim.Requests("RunInstances"))
	assert.Empty(t, l.Stops())
}

func TestRunWithLaunchTemplate(t *testing.T) {
	sim, _, c := newSim(t, EC2Options{KnownLaunchTemplates: []string{"lt-0123456789abcdef0", "workers"}})
	for _, lt := range []types.LaunchTemplateSpecification{
		{LaunchTemplateId: aws.String("lt-0123456789abcdef0"), Version: aws.String("$Latest")},
		{LaunchTemplateName: aws.String("workers"), Version: aws.String("3")},
	} {
		_, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{
			LaunchTemplate: &lt, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		})
		require.NoError(t, err)
	}
	snap := sim.Instances()
	require.Len(t, snap, 2)
	assert.Equal(t, "lt-0123456789abcdef0", snap[0].LaunchTemplate)
	assert.Equal(t, "$Latest", snap[0].LaunchTemplateVersion)
	assert.Equal(t, "workers", snap[1].LaunchTemplate)
	assert.Equal(t, "3", snap[1].LaunchTemplateVersion)
	assert.Empty(t, snap[0].ImageID)
}

func TestClientTokenIdempotency(t *testing.T) {
	sim, l, c := newSim(t, EC2Options{})
	ctx := context.Background()
	in := runInput(withTags("Name", "a"), func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-1") })

	first, err := c.RunInstances(ctx, in)
	require.NoError(t, err)
	again, err := c.RunInstances(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(first.ReservationId), aws.ToString(again.ReservationId))
	assert.Equal(t, aws.ToString(first.Instances[0].InstanceId), aws.ToString(again.Instances[0].InstanceId))
	assert.Equal(t, "tok-1", aws.ToString(again.Instances[0].ClientToken))
	assert.Len(t, l.Boots(), 1)
	assert.Len(t, sim.Instances(), 1)

	// The same token with other parameters is a mismatch, and launches nothing.
	other := runInput(withTags("Name", "b"), func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("tok-1") })
	_, err = c.RunInstances(ctx, other)
	require.Error(t, err)
	assert.Equal(t, "IdempotentParameterMismatch", apiCode(err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(err))
	assert.Len(t, l.Boots(), 1)

	// Another token launches another instance.
	_, err = c.RunInstances(ctx, runInput(withTags("Name", "a"), func(in *ec2.RunInstancesInput) {
		in.ClientToken = aws.String("tok-2")
	}))
	require.NoError(t, err)
	assert.Len(t, l.Boots(), 2)

	// The client-token filter finds the instance of a token.
	got := describe(t, c, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("client-token"), Values: []string{"tok-1"}},
	}})
	require.Len(t, got, 1)
	assert.Equal(t, aws.ToString(first.Instances[0].InstanceId), aws.ToString(got[0].InstanceId))
}

func TestClientTokenConcurrent(t *testing.T) {
	sim, l, c := newSim(t, EC2Options{})
	in := runInput(func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String("same") })
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			out, err := c.RunInstances(context.Background(), in)
			if assert.NoError(t, err) {
				ids[i] = aws.ToString(out.Instances[0].InstanceId)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	assert.Len(t, l.Boots(), 1)
	assert.Len(t, sim.Instances(), 1)
}

func TestDescribeFilters(t *testing.T) {
	_, _, c := newSim(t, EC2Options{BootDelay: 10 * time.Millisecond})
	ctx := context.Background()
	web1 := run(t, c, withTags("role", "web", "env", "prod"))
	web2 := run(t, c, withTags("role", "web", "env", "dev"), func(in *ec2.RunInstancesInput) {
		in.InstanceType = types.InstanceTypeM5Large
		in.SubnetId = aws.String("subnet-0bbb")
	})
	db := run(t, c, withTags("role", "db"))
	bare := run(t, c)
	all := []string{aws.ToString(web1.InstanceId), aws.ToString(web2.InstanceId), aws.ToString(db.InstanceId), aws.ToString(bare.InstanceId)}
	waitRunning(t, c, all...)
	_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(db.InstanceId)}})
	require.NoError(t, err)

	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := []struct {
		name    string
		filters []types.Filter
		want    []types.Instance
	}{
		{"none", nil, []types.Instance{web1, web2, db, bare}},
		{"tag", []types.Filter{f("tag:role", "web")}, []types.Instance{web1, web2}},
		{"tag values are ORed", []types.Filter{f("tag:role", "db", "web")}, []types.Instance{web1, web2, db}},
		{"filters are ANDed", []types.Filter{f("tag:role", "web"), f("tag:env", "dev")}, []types.Instance{web2}},
		{"tag wildcard", []types.Filter{f("tag:env", "pr*")}, []types.Instance{web1}},
		{"tag-key", []types.Filter{f("tag-key", "env")}, []types.Instance{web1, web2}},
		{"state running", []types.Filter{f("instance-state-name", "running")}, []types.Instance{web1, web2, bare}},
		{"state not running", []types.Filter{f("instance-state-name", "shutting-down", "terminated")}, []types.Instance{db}},
		{"instance-type", []types.Filter{f("instance-type", "m5.large")}, []types.Instance{web2}},
		{"subnet-id", []types.Filter{f("subnet-id", "subnet-0aaa")}, []types.Instance{web1, db, bare}},
		{"instance-id", []types.Filter{f("instance-id", aws.ToString(bare.InstanceId))}, []types.Instance{bare}},
		{"no match", []types.Filter{f("tag:role", "cache")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(t, c, &ec2.DescribeInstancesInput{Filters: tt.filters})
			var gotIDs, wantIDs []string
			for _, i := range got {
				gotIDs = append(gotIDs, aws.ToString(i.InstanceId))
			}
			for _, i := range tt.want {
				wantIDs = append(wantIDs, aws.ToString(i.InstanceId))
			}
			assert.Equal(t, wantIDs, gotIDs)
		})
	}
}

func TestDescribeErrors(t *testing.T) {
	_, _, c := newSim(t, EC2Options{})
	id := aws.ToString(run(t, c).InstanceId)
	tests := []struct {
		name string
		in   *ec2.DescribeInstancesInput
		code string
	}{
		{"unknown id", &ec2.DescribeInstancesInput{InstanceIds: []string{id, "i-00000000000000000"}}, "InvalidInstanceID.NotFound"},
		{"malformed id", &ec2.DescribeInstancesInput{InstanceIds: []string{"web-1"}}, "InvalidInstanceID.Malformed"},
		{"ids with MaxResults", &ec2.DescribeInstancesInput{InstanceIds: []string{id}, MaxResults: aws.Int32(5)}, "InvalidParameterCombination"},
		{"MaxResults too small", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue"},
		{"MaxResults too large", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)}, "InvalidParameterValue"},
		{"bad NextToken", &ec2.DescribeInstancesInput{NextToken: aws.String("garbage")}, "InvalidParameterValue"},
		{"unknown filter", &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}}, "InvalidParameterValue"},
		{"dry run", &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)}, "DryRunOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DescribeInstances(context.Background(), tt.in)
			require.Error(t, err)
			assert.Equal(t, tt.code, apiCode(err), err.Error())
		})
	}
}

func TestDescribePagination(t *testing.T) {
	tests := []struct {
		name       string
		pageSize   int
		maxResults *int32
		pages      []int
	}{
		{"MaxResults", 0, aws.Int32(5), []int{5, 5, 2}},
		{"MaxResults above the count", 0, aws.Int32(1000), []int{12}},
		{"default page size", 0, nil, []int{12}},
		{"PageSize option", 4, nil, []int{4, 4, 4}},
		{"MaxResults over PageSize", 4, aws.Int32(6), []int{6, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, _, c := newSim(t, EC2Options{PageSize: tt.pageSize})
			var want []string
			for range 12 {
				want = append(want, aws.ToString(run(t, c).InstanceId))
			}

			p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: tt.maxResults})
			var pages []int
			var got []string
			for p.HasMorePages() {
				out, err := p.NextPage(context.Background())
				require.NoError(t, err)
				pages = append(pages, len(out.Reservations))
				for _, r := range out.Reservations {
					for _, i := range r.Instances {
						got = append(got, aws.ToString(i.InstanceId))
					}
				}
			}
			assert.Equal(t, tt.pages, pages)
			assert.Equal(t, want, got, "every instance once, in launch order")
			assert.Equal(t, len(tt.pages), sim.Requests("DescribeInstances"))
		})
	}
}

func TestTerminate(t *testing.T) {
	_, l, c := newSim(t, EC2Options{BootDelay: 20 * time.Millisecond})
	ctx := context.Background()
	id := aws.ToString(run(t, c).InstanceId)
	waitRunning(t, c, id)

	out, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.TerminatingInstances, 1)
	ch := out.TerminatingInstances[0]
	assert.Equal(t, id, aws.ToString(ch.InstanceId))
	assert.Equal(t, types.InstanceStateNameRunning, ch.PreviousState.Name)
	assert.Equal(t, types.InstanceStateNameShuttingDown, ch.CurrentState.Name)
	assert.Equal(t, int32(32), aws.ToInt32(ch.CurrentState.Code))

	w := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay = 10 * time.Millisecond
		o.MaxDelay = 50 * time.Millisecond
	})
	require.NoError(t, w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 10*time.Second))
	assert.Equal(t, []string{id}, l.Stops())

	// Terminated instances stay visible, without their private address.
	got := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.Len(t, got, 1)
	assert.Equal(t, types.InstanceStateNameTerminated, got[0].State.Name)
	assert.Equal(t, int32(48), aws.ToInt32(got[0].State.Code))
	assert.Nil(t, got[0].PrivateIpAddress)
	assert.Equal(t, "Client.UserInitiatedShutdown", aws.ToString(got[0].StateReason.Code))

	// Terminating again is no error and stops nothing more.
	out, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	assert.Equal(t, types.InstanceStateNameTerminated, out.TerminatingInstances[0].PreviousState.Name)
	assert.Equal(t, types.InstanceStateNameTerminated, out.TerminatingInstances[0].CurrentState.Name)
	assert.Equal(t, []string{id}, l.Stops())

	for _, tt := range []struct{ ids []string }{
		{[]string{"i-0fffffffffffffff0"}},
		{[]string{id, "i-0fffffffffffffff0"}},
	} {
		_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: tt.ids})
		assert.Equal(t, "InvalidInstanceID.NotFound", apiCode(err))
		assert.Equal(t, http.StatusBadRequest, httpStatus(err))
	}
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-nothex"}})
	assert.Equal(t, "InvalidInstanceID.Malformed", apiCode(err))
}

func TestTerminatePending(t *testing.T) {
	_, l, c := newSim(t, EC2Options{BootDelay: time.Hour})
	id := aws.ToString(run(t, c).InstanceId)
	out, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	assert.Equal(t, types.InstanceStateNamePending, out.TerminatingInstances[0].PreviousState.Name)
	assert.Equal(t, types.InstanceStateNameShuttingDown, out.TerminatingInstances[0].CurrentState.Name)
	assert.Eventually(t, func() bool { return len(l.Stops()) == 1 }, 5*time.Second, 5*time.Millisecond)
}

func TestInsufficientCapacity(t *testing.T) {
	sim, _, c := newSim(t, EC2Options{})
	sim.NoCapacity("m5.large", "subnet-0aaa")
	sim.NoCapacity("", "subnet-0full")

	tests := []struct {
		instanceType types.InstanceType
		subnet       string
		fails        bool
	}{
		{types.InstanceTypeM5Large, "subnet-0aaa", true},
		{types.InstanceTypeM5Large, "subnet-0bbb", false},
		{types.InstanceTypeC5Large, "subnet-0aaa", false},
		{types.InstanceTypeC5Large, "subnet-0full", true},
		{types.InstanceTypeT3Micro, "subnet-0full", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.instanceType)+"/"+tt.subnet, func(t *testing.T) {
			before := sim.Requests("RunInstances")
			_, err := c.RunInstances(context.Background(), runInput(func(in *ec2.RunInstancesInput) {
				in.InstanceType = tt.instanceType
				in.SubnetId = aws.String(tt.subnet)
			}))
			if !tt.fails {
				require.NoError(t, err)
				assert.Equal(t, before+1, sim.Requests("RunInstances"))
				return
			}
			require.Error(t, err)
			assert.Equal(t, "InsufficientInstanceCapacity", apiCode(err))
			assert.Equal(t, http.StatusInternalServerError, httpStatus(err))
			// The SDK retries a 500 as EC2 answers it: three attempts.
			assert.Equal(t, before+3, sim.Requests("RunInstances"))
		})
	}
	assert.Len(t, sim.Instances(), 2)

	sim.RestoreCapacity("m5.large", "subnet-0aaa")
	run(t, c, func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeM5Large })
}

func TestThrottle(t *testing.T) {
	sim, _, c := newSim(t, EC2Options{})
	sim.Throttle(2)
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	require.NoError(t, err)
	assert.Equal(t, 3, sim.Requests("DescribeInstances"))
	attempts, ok := retry.GetAttemptResults(out.ResultMetadata)
	require.True(t, ok)
	require.Len(t, attempts.Results, 3)
	assert.Equal(t, "RequestLimitExceeded", apiCode(attempts.Results[0].Err))
	assert.Equal(t, http.StatusServiceUnavailable, httpStatus(attempts.Results[0].Err))

	// More throttling than the retryer's three attempts fails the call.
	sim.Throttle(3)
	_, err = c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	assert.Equal(t, "RequestLimitExceeded", apiCode(err))
	assert.Equal(t, 6, sim.Requests("DescribeInstances"))
}

func TestRunErrors(t *testing.T) {
	_, l, c := newSim(t, EC2Options{
		KnownAMIs:            []string{"ami-0123456789abcdef0"},
		KnownLaunchTemplates: []string{"lt-0aaa", "workers"},
	})
	tests := []struct {
		name string
		mod  func(*ec2.RunInstancesInput)
		code string
	}{
		{"unknown AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-0ffffffffffffffff") }, "InvalidAMIID.NotFound"},
		{"malformed AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ubuntu") }, "InvalidAMIID.Malformed"},
		{"no AMI", func(in *ec2.RunInstancesInput) { in.ImageId = nil }, "MissingParameter"},
		{"unknown template id", func(in *ec2.RunInstancesInput) {
			in.ImageId = nil
			in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0bbb")}
		}, "InvalidLaunchTemplateId.NotFound"},
		{"unknown template name", func(in *ec2.RunInstancesInput) {
			in.ImageId = nil
			in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("nope")}
		}, "InvalidLaunchTemplateName.NotFoundException"},
		{"bad user data", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("not base64!") }, "InvalidParameterValue"},
		{"MaxCount 2", func(in *ec2.RunInstancesInput) { in.MaxCount = aws.Int32(2) }, "InvalidParameterValue"},
		{"aws: tag", withTags("aws:owner", "me"), "InvalidParameterValue"},
		{"bad subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("net-1") }, "InvalidSubnetID.NotFound"},
		{"dry run", func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.RunInstances(context.Background(), runInput(tt.mod))
			require.Error(t, err)
			assert.Equal(t, tt.code, apiCode(err), err.Error())
		})
	}
	assert.Empty(t, l.Boots())
}

func TestFailNext(t *testing.T) {
	sim, l, c := newSim(t, EC2Options{})
	sim.FailNext("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 32 allows.", 400)

	_, err := c.RunInstances(context.Background(), runInput())
	require.Error(t, err)
	assert.Equal(t, "VcpuLimitExceeded", apiCode(err))
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	assert.Contains(t, ae.ErrorMessage(), "vCPU limit of 32")
	assert.Empty(t, l.Boots())

	run(t, c) // only once
	assert.Len(t, l.Boots(), 1)
}

func TestBootFailure(t *testing.T) {
	sim, l, c := newSim(t, EC2Options{BootDelay: 10 * time.Millisecond})
	inst := run(t, c, func(in *ec2.RunInstancesInput) {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte("fail")))
	})
	id := aws.ToString(inst.InstanceId)
	assert.Equal(t, types.InstanceStateNamePending, inst.State.Name)

	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = 10 * time.Millisecond
		o.MaxDelay = 20 * time.Millisecond
	})
	err := w.Wait(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second)
	require.Error(t, err, "the instance terminates instead of running")

	got := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.Len(t, got, 1)
	assert.Equal(t, types.InstanceStateNameTerminated, got[0].State.Name)
	assert.Equal(t, "Server.InternalError", aws.ToString(got[0].StateReason.Code))
	assert.Contains(t, sim.Instances()[0].StateReason, "kernel panic")
	assert.Empty(t, l.Stops(), "an instance that did not boot is not stopped")
}

func TestRunningWaiter(t *testing.T) {
	const delay = 300 * time.Millisecond
	_, _, c := newSim(t, EC2Options{BootDelay: delay})
	start := time.Now()
	id := aws.ToString(run(t, c).InstanceId)

	got := describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	assert.Equal(t, types.InstanceStateNamePending, got[0].State.Name)

	waitRunning(t, c, id)
	assert.GreaterOrEqual(t, time.Since(start), delay)
	got = describe(t, c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	assert.Equal(t, types.InstanceStateNameRunning, got[0].State.Name)
}

func TestCloseStopsInstances(t *testing.T) {
	l := &fakeLauncher{}
	sim := NewEC2(l, EC2Options{BootDelay: 10 * time.Millisecond})
	c := newClient(sim)
	a := aws.ToString(run(t, c).InstanceId)
	b := aws.ToString(run(t, c).InstanceId)
	waitRunning(t, c, a, b)
	_, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{a}})
	require.NoError(t, err)

	sim.Close()
	sim.Close() // idempotent
	assert.ElementsMatch(t, []string{a, b}, l.Stops())
	for _, inst := range sim.Instances() {
		assert.Equal(t, "terminated", inst.State)
	}
}

func TestUnsupportedAction(t *testing.T) {
	_, _, c := newSim(t, EC2Options{})
	_, err := c.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
	require.Error(t, err)
	assert.Equal(t, "InvalidAction", apiCode(err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(err))
}

// TestWire checks the protocol below the SDK: what a request without a
// signature, of the wrong shape or for another region gets.
func TestWire(t *testing.T) {
	sim, _, _ := newSim(t, EC2Options{Region: "eu-west-1"})
	const sig = "AWS4-HMAC-SHA256 Credential=AKID/20250101/%s/ec2/aws4_request, SignedHeaders=host, Signature=00"
	form := "Action=DescribeInstances&Version=2016-11-15"
	tests := []struct {
		name        string
		method      string
		contentType string
		auth        string
		body        string
		status      int
		code        string
	}{
		{"ok", "POST", "application/x-www-form-urlencoded", fmt.Sprintf(sig, "eu-west-1"), form, 200, ""},
		{"no signature", "POST", "application/x-www-form-urlencoded", "", form, 401, "AuthFailure"},
		{"other region", "POST", "application/x-www-form-urlencoded", fmt.Sprintf(sig, "us-east-1"), form, 401, "AuthFailure"},
		{"GET", "GET", "", fmt.Sprintf(sig, "eu-west-1"), "", 405, "InvalidRequest"},
		{"JSON", "POST", "application/json", fmt.Sprintf(sig, "eu-west-1"), "{}", 415, "InvalidRequest"},
		{"no action", "POST", "application/x-www-form-urlencoded", fmt.Sprintf(sig, "eu-west-1"), "Version=2016-11-15", 400, "MissingAction"},
		{"no version", "POST", "application/x-www-form-urlencoded", fmt.Sprintf(sig, "eu-west-1"), "Action=DescribeInstances", 400, "MissingParameter"},
		{"unknown action", "POST", "application/x-www-form-urlencoded", fmt.Sprintf(sig, "eu-west-1"),
			url.Values{"Action": {"LaunchRockets"}, "Version": {"2016-11-15"}}.Encode(), 400, "InvalidAction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, sim.URL(), strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.StatusCode, string(body))
			if tt.code == "" {
				assert.Contains(t, string(body), `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`)
				return
			}
			var doc struct {
				XMLName   xml.Name `xml:"Response"`
				Code      string   `xml:"Errors>Error>Code"`
				Message   string   `xml:"Errors>Error>Message"`
				RequestID string   `xml:"RequestID"`
			}
			require.NoError(t, xml.Unmarshal(body, &doc), string(body))
			assert.Equal(t, tt.code, doc.Code)
			assert.NotEmpty(t, doc.Message)
			assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, doc.RequestID)
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"web", "web", true},
		{"web", "web2", false},
		{"w*", "web", true},
		{"*b", "web", true},
		{"*", "", true},
		{"w?b", "web", true},
		{"w?b", "wb", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, glob(tt.pattern, tt.s), "%q ~ %q", tt.pattern, tt.s)
	}
}

// TestDefaultHTTPClient runs the SDK as configured by default, bar the
// endpoint: its own HTTP client and retryer.
func TestDefaultHTTPClient(t *testing.T) {
	l := &fakeLauncher{}
	sim := NewEC2(l, EC2Options{BootDelay: 10 * time.Millisecond})
	t.Cleanup(sim.Close)
	c := ec2.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}, func(o *ec2.Options) { o.BaseEndpoint = aws.String(sim.URL()) })
	ctx := context.Background()

	var ids []string
	for range 7 {
		ids = append(ids, aws.ToString(run(t, c, withTags("pool", "p")).InstanceId))
	}
	waitRunning(t, c, ids...)
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(5),
		Filters:    []types.Filter{{Name: aws.String("tag:pool"), Values: []string{"p"}}},
	})
	var got []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, r := range out.Reservations {
			got = append(got, aws.ToString(r.Instances[0].InstanceId))
		}
	}
	assert.Equal(t, ids, got)
	_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return len(l.Stops()) == len(ids) }, 5*time.Second, 5*time.Millisecond)
	assert.Len(t, l.Boots(), len(ids))
}

func TestDescribeImages(t *testing.T) {
	_, _, client := newSim(t, EC2Options{KnownAMIs: []string{"ami-0123456789abcdef0"}})
	out, err := client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1)
	assert.Equal(t, "ami-0123456789abcdef0", aws.ToString(out.Images[0].ImageId))
	_, err = client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{"ami-0fffffffffffffff0"}})
	assert.Equal(t, "InvalidAMIID.NotFound", apiCode(err))
}
