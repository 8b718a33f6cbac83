package ec2_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/cloudsim"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/cloudinit"
	"github.com/msm-project/msm/providers/ec2"
	"github.com/msm-project/msm/providers/providertest"
)

const ami = "ami-0123456789abcdef0"

func settings(endpoint string) catalog.Manager {
	return catalog.Manager{Kind: catalog.KindEC2,
		Node: catalog.NodeBoot{Temporal: "temporal.internal:7233", Namespace: "default", MSM: "/usr/local/bin/msm", TLS: true},
		EC2: catalog.EC2{Region: "us-east-1", Endpoint: endpoint, AMI: ami, InstanceTypes: []string{"m7i.large", "c7i.large"},
			Subnets: []string{"subnet-0a", "subnet-0b"}, SecurityGroups: []string{"sg-01"}}}
}

// client is the real SDK client on the simulator, with static credentials.
func client(sim *cloudsim.EC2) *awsec2.Client {
	return awsec2.New(awsec2.Options{Region: sim.Region(), BaseEndpoint: aws.String(sim.URL()), HTTPClient: sim.HTTPClient(), Retryer: ec2.Retryer(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
}

func newProvider(sim *cloudsim.EC2, owner string) *ec2.Provider {
	p := ec2.NewWithAPI(client(sim), settings(sim.URL()), owner)
	p.Poll = 20 * time.Millisecond
	return p
}

func TestConformance(t *testing.T) {
	sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 50 * time.Millisecond})
	t.Cleanup(sim.Close)
	providertest.Run(t, providertest.Harness{
		New:   func(_ *testing.T, owner string) providers.Provider { return newProvider(sim, owner) },
		Names: [2]string{"m-s1", "m-s2"},
		Full:  func(*testing.T) { sim.NoCapacity("", "") },
	})
}

// TestNewBuildsTheRealClientFromTheDefaultChain: New reads credentials
// from the environment and reaches the endpoint of the catalog.
func TestNewBuildsTheRealClientFromTheDefaultChain(t *testing.T) {
	sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 10 * time.Millisecond})
	t.Cleanup(sim.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	p, err := ec2.New(context.Background(), settings(sim.URL()), "m")
	require.NoError(t, err)
	require.NoError(t, p.Check(context.Background()))

	bad := settings(sim.URL())
	bad.EC2.AMI = "ami-0fffffffffffffff0"
	p, err = ec2.New(context.Background(), bad, "m")
	require.NoError(t, err)
	err = p.Check(context.Background())
	require.ErrorContains(t, err, "manager.ec2.ami: ami-0fffffffffffffff0 is not an image this account can launch in us-east-1")

	_, err = ec2.New(context.Background(), catalog.Manager{}, "m")
	require.ErrorContains(t, err, "manager.ec2.region is not set")
	assert.Zero(t, sim.Requests("RunInstances"), "nothing launched")
}

func TestLaunchTagsUserDataAndAddress(t *testing.T) {
	h := &cloudsim.Hosts{Prefix: "10.0.0."}
	sim := cloudsim.NewEC2(h, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 50 * time.Millisecond})
	t.Cleanup(sim.Close)
	p := newProvider(sim, "m")
	s, err := p.Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1", JoinToken: "k1 dG9rZW4="})
	require.NoError(t, err)
	assert.Equal(t, providers.Server{ID: "m-s1", Address: "10.0.0.1", Owner: "m"}, s)
	insts := sim.Instances()
	require.Len(t, insts, 1)
	i := insts[0]
	assert.Equal(t, map[string]string{"Name": "m-s1", "msm:owner": "m", "msm:server": "m-s1", "msm:key": "m/m-s1"}, i.Tags)
	assert.Equal(t, "m7i.large", i.InstanceType)
	assert.Equal(t, "subnet-0a", i.SubnetID)
	assert.Equal(t, []string{"sg-01"}, i.SecurityGroups)
	assert.Equal(t, "running", i.State, "Create returns once the instance runs")
	assert.Equal(t, cloudsim.EC2Metadata{HTTPTokens: "required", HopLimit: 1, HTTPEndpoint: "enabled"}, i.Metadata, "IMDSv2 only, one hop")
	assert.Equal(t, "#cloud-config\nwrite_files:\n  - path: /etc/msm/join-token\n    owner: root:root\n    permissions: \"0600\"\n    content: \"k1 dG9rZW4=\\n\"\nruncmd:\n  - "+
		`["/usr/local/bin/msm","node","--server","m-s1","--manager","m","--address","temporal.internal:7233","--namespace","default","--tls","--block-metadata","--join-token-file","/etc/msm/join-token"]`+"\n",
		h.Data(i.ID))
}

func TestCapacityFallsBackThroughTypesThenSubnets(t *testing.T) {
	tests := []struct {
		name         string
		full         [][2]string // type, subnet
		wantType     string
		wantSubnet   string
		noCapacity   bool
		wantAttempts int
	}{
		{name: "first has room", wantType: "m7i.large", wantSubnet: "subnet-0a", wantAttempts: 1},
		{name: "first subnet of the first type full", full: [][2]string{{"m7i.large", "subnet-0a"}}, wantType: "m7i.large", wantSubnet: "subnet-0b", wantAttempts: 2},
		{name: "first type full", full: [][2]string{{"m7i.large", ""}}, wantType: "c7i.large", wantSubnet: "subnet-0a", wantAttempts: 3},
		{name: "all full", full: [][2]string{{"", ""}}, noCapacity: true, wantAttempts: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 10 * time.Millisecond})
			t.Cleanup(sim.Close)
			for _, f := range tc.full {
				sim.NoCapacity(f[0], f[1])
			}
			_, err := newProvider(sim, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
			assert.Equal(t, tc.wantAttempts, sim.Requests("RunInstances"), "a capacity error is not retried by the SDK")
			if tc.noCapacity {
				require.True(t, providers.IsNoCapacity(err), "%v", err)
				assert.Contains(t, err.Error(), "no configured instance type and subnet has room (m7i.large in subnet-0a: InsufficientInstanceCapacity; m7i.large in subnet-0b")
				assert.Empty(t, sim.Instances())
				return
			}
			require.NoError(t, err)
			insts := sim.Instances()
			require.Len(t, insts, 1)
			assert.Equal(t, tc.wantType, insts[0].InstanceType)
			assert.Equal(t, tc.wantSubnet, insts[0].SubnetID)
		})
	}
}

// TestRetryAfterACrashMakesNoSecondInstance: the launch ran, its result
// was lost (the worker died); the retry, even once capacity came back to
// an earlier type, finds the instance by its key.
func TestRetryAfterACrashMakesNoSecondInstance(t *testing.T) {
	sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 10 * time.Millisecond})
	t.Cleanup(sim.Close)
	sim.NoCapacity("m7i.large", "")
	first, err := newProvider(sim, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	sim.RestoreCapacity("m7i.large", "")
	again, err := newProvider(sim, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, sim.Instances(), 1)
}

func TestThrottlingIsRetried(t *testing.T) {
	sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 10 * time.Millisecond})
	t.Cleanup(sim.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	p, err := ec2.New(context.Background(), settings(sim.URL()), "m")
	require.NoError(t, err)
	p.Poll = 20 * time.Millisecond
	sim.Throttle(3)
	_, err = p.Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.NoError(t, err)
	assert.Len(t, sim.Instances(), 1)
}

func TestBadSettingsArePermanent(t *testing.T) {
	sim := cloudsim.NewEC2(&cloudsim.Hosts{Prefix: "10.0.0."}, cloudsim.EC2Options{KnownAMIs: []string{"ami-0aaaaaaaaaaaaaaa0"}})
	t.Cleanup(sim.Close)
	_, err := newProvider(sim, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.True(t, providers.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "manager.ec2.ami is not an image this account can launch")
	assert.Empty(t, sim.Instances())
}

func TestUserDataNeedsTheTemporalAddress(t *testing.T) {
	_, err := ec2.UserData(catalog.NodeBoot{MSM: "/msm"}, "s", "m", cloudinit.Secrets{})
	require.ErrorContains(t, err, "manager.node.temporal is not set")
	_, err = ec2.UserData(catalog.NodeBoot{MSM: "/msm", Temporal: "t:7233", Namespace: "default", CA: "a\nb"}, "s", "m", cloudinit.Secrets{})
	require.ErrorContains(t, err, "multi-line")
	out, err := ec2.UserData(catalog.NodeBoot{MSM: "/msm", Temporal: "t:7233", Namespace: "ns", CA: "/etc/ca.pem", APIKeyFile: "/etc/key"}, "s", "m", cloudinit.Secrets{})
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, `"--tls-ca","/etc/ca.pem","--api-key-file","/etc/key","--block-metadata"]`+"\n"), out)
}

// broken boots nothing: every instance fails to start.
type broken struct{}

func (broken) Boot(string, []byte) (string, error) { return "", fmt.Errorf("no such host") }
func (broken) Stop(string) error                   { return nil }

func TestInstanceThatNeverRunsSaysWhy(t *testing.T) {
	sim := cloudsim.NewEC2(broken{}, cloudsim.EC2Options{KnownAMIs: []string{ami}, BootDelay: 20 * time.Millisecond})
	t.Cleanup(sim.Close)
	_, err := newProvider(sim, "m").Create(context.Background(), "m/m-s1", providers.Spec{Owner: "m", Name: "m-s1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "of server m-s1 did not reach running (terminated")
}
