package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/cloudsim"
	"github.com/msm-project/msm/internal/faults"
	"github.com/msm-project/msm/workflows"
)

const testAMI = "ami-0e2e0123456789abc"

// awsEnv points the SDK's default chain at static test credentials.
var awsEnv = []string{"AWS_ACCESS_KEY_ID=AKIDE2ETEST", "AWS_SECRET_ACCESS_KEY=e2e-secret", "AWS_EC2_METADATA_DISABLED=true",
	"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}

// ec2Catalog is web ×2 on servers of 2 slots, launched on the simulated
// EC2 at endpoint: m7i.large first, c7i.large when it has no capacity.
func (c *cluster) ec2Catalog(endpoint string, manager ...string) {
	c.t.Helper()
	extra := ""
	for _, line := range manager {
		extra += "  " + line + "\n"
	}
	yaml := fmt.Sprintf(`manager:
  kind: ec2
  liveness: 3s
%s  server: {slots: 2, ports: 20000-20019}
  max_servers: 4
  node: {temporal: %q}
  ec2:
    region: us-east-1
    endpoint: %s
    ami: %s
    instance_types: [m7i.large, c7i.large]
    subnets: [subnet-0e2e0001]
    security_groups: [sg-0e2e0001]
services:
  - name: web
    command: /usr/local/bin/demo
    args: ["--port={{.Port}}", "--name={{.Service}}", "--listen=0.0.0.0"]
    replicas: {min: 1, initial: 2, max: 6}
`, extra, c.frontend, endpoint, testAMI)
	require.NoError(c.t, os.WriteFile(c.catalog, []byte(yaml), 0o644))
}

// instancesOf returns the simulated instances tagged for server.
func instancesOf(sim *cloudsim.EC2, server string) []cloudsim.EC2Instance {
	var out []cloudsim.EC2Instance
	for _, i := range sim.Instances() {
		if i.Tags["msm:server"] == server {
			out = append(out, i)
		}
	}
	return out
}

// TestEC2KindLaunchesAndTerminatesInstances runs the ec2 kind's real SDK
// client against the simulated EC2, whose instances boot `msm node` from
// their user data as separate hosts. An Extend that needs a server launches
// an instance (its worker killed right after RunInstances: still one
// instance); a type without capacity makes the next one used; when none
// has room the Extend ends with an explicit no-capacity outcome and the
// Manager keeps serving; shrinking a server to zero terminates it.
func TestEC2KindLaunchesAndTerminatesInstances(t *testing.T) {
	c := newCluster(t, spec{hosts: true})
	inst := newDockerInstances(c)
	sim := cloudsim.NewEC2(inst, cloudsim.EC2Options{KnownAMIs: []string{testAMI}, BootDelay: 200 * time.Millisecond})
	t.Cleanup(sim.Close)
	c.ec2Catalog(sim.URL())
	s1, s2 := c.manager+"-s1", c.manager+"-s2"
	c.ranges = map[string][2]int{s1: {20000, 20019}, s2: {20000, 20019}}

	// Reports authenticated: each instance's user data gives its node its
	// join token.
	env := append(slices.Clone(awsEnv), "MSM_KEY_FILE="+c.keyRing())
	// And payloads encrypted: each node gets the keys in its user data too.
	c.codecOn()
	died := c.startEnv("worker", append(env, faults.Env+"="+workflows.WorkflowExtend+":launch"), "worker", "--catalog", c.catalog)
	st := c.waitFor("web ×2 on the first instance", 120*time.Second, converged(0))
	c.assertAuthenticated(st)
	c.assertSealed("{{.Port}}")
	require.Len(t, st.Servers, 1)
	require.Equal(t, s1, st.Servers[0].ID)
	first := instancesOf(sim, s1)
	require.Len(t, first, 1)
	assert.Equal(t, "m7i.large", first[0].InstanceType)
	assert.Equal(t, "running", first[0].State)
	assert.Equal(t, c.manager, first[0].Tags["msm:owner"])
	assert.Equal(t, first[0].PrivateIP, st.Servers[0].Address, "the server's address is its instance's")
	assert.Contains(t, string(first[0].UserData), `"--server","`+s1+`"`)
	assert.Contains(t, string(first[0].UserData), `"--block-metadata","--join-token-file","/etc/msm/join-token","--codec-key-file","/etc/msm/codec-keys"]`)
	c.assertServing(st)

	// m7i.large is full: the Extend's new server is a c7i.large, and the
	// worker dies right after RunInstances returned it.
	sim.NoCapacity("m7i.large", "")
	_, err := c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	c.restartWorker(died, 90*time.Second, env...)
	st = c.waitFor("web ×3, the third on a second instance", 120*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 3
	})
	second := instancesOf(sim, s2)
	require.Len(t, second, 1, "one instance for the retried launch: %+v", second)
	assert.Equal(t, "c7i.large", second[0].InstanceType)
	assert.Equal(t, 1, onServer(st, s2, "web"))
	c.assertServing(st)
	c.requireInvariants(30 * time.Second)

	// No type has room: of two more instances, the one that fits on the
	// second server is placed; the one that needs a third server fails it
	// with an explicit no-capacity outcome, nothing is launched, and the
	// Manager serves on.
	sim.NoCapacity("", "")
	before := len(sim.Instances())
	_, err = c.msm("extend", "web", "--count", "2")
	require.NoError(t, err)
	st = c.waitFor("the no-capacity outcome", 90*time.Second, func(st workflows.Status) bool {
		return strings.Contains(eventsOf(st), "no configured instance type and subnet has room")
	})
	assert.Contains(t, eventsOf(st), "failed to launch")
	assert.Equal(t, before, len(sim.Instances()), "nothing launched")
	st = c.waitFor("the operation over", 30*time.Second, func(st workflows.Status) bool { return st.Operations == 0 })
	assert.Equal(t, 4, st.Services[0].Ready, "the instances in service stay, and the one with room was placed")
	assert.Equal(t, 2, onServer(st, s2, "web"))
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'extend' AND ExecutionStatus = 'Failed'", c.manager))

	// Down to 2: the newest instance, alone on the second server, goes,
	// and the emptied server's instance is terminated.
	_, err = c.msm("scale", "web", "2")
	require.NoError(t, err)
	st = c.waitFor("web ×2 and the second server released", 90*time.Second, func(st workflows.Status) bool {
		return len(st.Servers) == 1 && st.Services[0].Desired == 2 && st.Services[0].Ready == 2 && st.Operations == 0
	})
	assert.Equal(t, s1, st.Servers[0].ID)
	second = instancesOf(sim, s2)
	require.Len(t, second, 1)
	assert.Contains(t, []string{"shutting-down", "terminated"}, second[0].State)
	assert.Eventually(t, func() bool { return !inst.running(s2) }, 10*time.Second, 100*time.Millisecond, "the terminated instance's host is gone")
	assert.Equal(t, "running", instancesOf(sim, s1)[0].State)
}

// TestEC2InstanceTerminatedBehindItsBackIsReplaced: an instance the cloud
// terminates behind msm's back (a spot interruption, the console) takes its
// node with it: the server is lost, its instances are recovered on a new
// instance, and after manager.forget_after the lost one is released through
// the provider (terminating what is terminated already is no error) and
// counted out: the status lists one server, and the kind may launch again
// up to max_servers.
func TestEC2InstanceTerminatedBehindItsBackIsReplaced(t *testing.T) {
	c := newCluster(t, spec{hosts: true})
	inst := newDockerInstances(c)
	sim := cloudsim.NewEC2(inst, cloudsim.EC2Options{KnownAMIs: []string{testAMI}, BootDelay: 200 * time.Millisecond})
	t.Cleanup(sim.Close)
	c.ec2Catalog(sim.URL(), "forget_after: 5s")
	s1, s2 := c.manager+"-s1", c.manager+"-s2"
	c.ranges = map[string][2]int{s1: {20000, 20019}, s2: {20000, 20019}}
	c.startEnv("worker", awsEnv, "worker", "--catalog", c.catalog)
	st := c.waitFor("web ×2 on the first instance", 120*time.Second, converged(0))
	require.Len(t, st.Servers, 1)
	first := instancesOf(sim, s1)
	require.Len(t, first, 1)

	require.True(t, sim.Terminate(first[0].ID, "Server.SpotInstanceTermination: Spot instance termination"))
	st = c.waitFor("web ×2 on a new instance, the terminated one counted out", 120*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Servers) == 1 && st.Servers[0].ID == s2
	})
	assert.Equal(t, 2, onServer(st, s2, "web"), "both instances replaced on the new instance")
	assert.Equal(t, "terminated", instancesOf(sim, s1)[0].State)
	second := instancesOf(sim, s2)
	require.Len(t, second, 1, "one instance launched in its place")
	assert.Equal(t, "running", second[0].State)
	events := eventsOf(st)
	assert.Contains(t, events, "server "+s1+" forgotten: lost since")
	assert.Contains(t, events, "more than manager.forget_after (5s)")
	for _, ct := range st.Containers {
		assert.Equal(t, s2, ct.Server, "nothing of %s is left holding a port", s1)
	}
	c.assertServing(st)
}

// TestCloudKindBadSettingsStartNothing: a worker given settings the cloud
// refuses (an unknown AMI or instance type, no credentials) exits at start naming what to
// fix, and launches nothing.
func TestCloudKindBadSettingsStartNothing(t *testing.T) {
	tests := []struct {
		name  string
		ami   string
		types string
		env   []string
		want  string
	}{
		{name: "unknown AMI", ami: "ami-0fffffffffffffff0", env: awsEnv, want: "manager.ec2.ami: ami-0fffffffffffffff0 is not an image this account can launch in us-east-1"},
		{name: "unknown instance type", ami: testAMI, env: awsEnv, types: "[m7i.large, c7x.huge]",
			want: "manager.ec2.instance_types: [m7i.large c7x.huge] are not all instance types of us-east-1"},
		{name: "no credentials", ami: testAMI, env: []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"},
			want: "are AWS credentials set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, spec{})
			sim := cloudsim.NewEC2(&nowhere{}, cloudsim.EC2Options{KnownAMIs: []string{testAMI}, KnownInstanceTypes: []string{"m7i.large", "c7i.large"}})
			t.Cleanup(sim.Close)
			c.frontend = "temporal.internal:7233"
			c.ec2Catalog(sim.URL())
			b, err := os.ReadFile(c.catalog)
			require.NoError(t, err)
			yaml := strings.Replace(string(b), testAMI, tc.ami, 1)
			if tc.types != "" {
				yaml = strings.Replace(yaml, "[m7i.large, c7i.large]", tc.types, 1)
			}
			require.NoError(t, os.WriteFile(c.catalog, []byte(yaml), 0o644))
			exited := c.startEnv("worker", tc.env, "worker", "--catalog", c.catalog)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				t.Fatal("the worker did not refuse to start")
			}
			assert.NotZero(t, c.h.Cmd("worker").ProcessState.ExitCode())
			log, err := os.ReadFile(c.dir + "/worker.log")
			require.NoError(t, err)
			assert.Contains(t, string(log), "the ec2 kind cannot work with this catalog (nothing was started)")
			assert.Contains(t, string(log), tc.want)
			assert.Zero(t, sim.Requests("RunInstances"), "nothing launched")
			_, err = c.status()
			assert.ErrorContains(t, err, "is not running", "no Manager was started")
		})
	}
}

// nowhere is a launcher for tests that must launch nothing.
type nowhere struct{}

func (nowhere) Boot(id string, _ []byte) (string, error) {
	return "", fmt.Errorf("instance %s launched", id)
}
func (nowhere) Stop(string) error { return nil }
