package docker_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/testimage"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/providers/providertest"
)

// The conformance suite against this machine's Docker Engine: each server
// is the node container of an engine; both engines of the catalog are this
// one, under two names.
func TestConformance(t *testing.T) {
	img, err := testimage.Build()
	require.NoError(t, err)
	eng, err := docker.Dial("", catalog.EngineTLS{})
	require.NoError(t, err)
	owners := []string{"owner-1", "owner-2", "owner-3", "owner-4", "owner-5", "owner-6"}
	clean := func() {
		ctx := context.Background()
		for _, o := range owners {
			left, _ := docker.Owned(ctx, eng, map[string]string{docker.LabelOwner: o})
			for _, c := range left {
				_ = docker.Remove(ctx, eng, c.ID)
			}
			_ = docker.RemoveNetworkIfUnused(ctx, eng, "msm-"+o, o)
		}
		_ = exec.Command("docker", "rm", "-f", docker.NodeName("owner-6", "eng-a")).Run()
	}
	clean()
	t.Cleanup(func() {
		clean()
		// Nothing with an owner label of the suite is left.
		for _, o := range owners {
			left, err := docker.Owned(context.Background(), eng, map[string]string{docker.LabelOwner: o})
			require.NoError(t, err)
			require.Empty(t, left, "containers of %s left", o)
			out, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label="+docker.LabelOwner+"="+o).Output()
			require.Empty(t, string(out), "network of %s left", o)
		}
	})
	m := catalog.Manager{
		Kind: catalog.KindDocker,
		Servers: []catalog.Server{
			{Name: "eng-a", Address: "127.0.0.1", Slots: 2, Ports: catalog.PortRange{First: 21900, Last: 21909}},
			{Name: "eng-b", Address: "127.0.0.1", Slots: 2, Ports: catalog.PortRange{First: 21910, Last: 21919}},
		},
		// The node containers wait for a Temporal nobody runs here.
		Node:   catalog.NodeBoot{Temporal: "host.docker.internal:1", Namespace: "default", MSM: catalog.DefaultMSM},
		Docker: catalog.Docker{Image: img, Socket: catalog.DefaultDockerSocket},
	}
	providertest.Run(t, providertest.Harness{
		New: func(t *testing.T, owner string) providers.Provider {
			p := docker.New(m, owner)
			require.NoError(t, p.Check(context.Background()))
			return p
		},
		Names: [2]string{"eng-a", "eng-b"},
		// The engine is full for owner-6 when the name of its node
		// container is taken by a container msm did not make.
		Full: func(t *testing.T) {
			out, err := exec.Command("docker", "create", "--name", docker.NodeName("owner-6", "eng-a"), img).CombinedOutput()
			require.NoError(t, err, "%s", out)
		},
	})
}

func TestCheckNamesTheSettingToFix(t *testing.T) {
	img, err := testimage.Build()
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		server catalog.Server
		image  string
		want   string
	}{
		{"engine not answering", catalog.Server{Name: "far", Endpoint: "tcp://127.0.0.1:1"}, img,
			"manager.servers[0] (far): the Docker engine at tcp://127.0.0.1:1 does not answer"},
		{"image missing", catalog.Server{Name: "local"}, "msm-not-built:1",
			`manager.docker.image: the engine of local has no image "msm-not-built:1"`},
		{"all well", catalog.Server{Name: "local"}, img, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := catalog.Manager{Kind: catalog.KindDocker, Servers: []catalog.Server{tc.server}, Docker: catalog.Docker{Image: tc.image}}
			err := docker.New(m, "check").Check(context.Background())
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestJoinTokenReachesTheNode: the node container the provider starts gets
// the server's join token in its environment (the node removes it from
// its own at once; its agents' containers never get it).
func TestJoinTokenReachesTheNode(t *testing.T) {
	img, err := testimage.Build()
	require.NoError(t, err)
	eng, err := docker.Dial("", catalog.EngineTLS{})
	require.NoError(t, err)
	const owner = "owner-jt"
	clean := func() {
		left, _ := docker.Owned(context.Background(), eng, map[string]string{docker.LabelOwner: owner})
		for _, c := range left {
			_ = docker.Remove(context.Background(), eng, c.ID)
		}
		_ = docker.RemoveNetworkIfUnused(context.Background(), eng, "msm-"+owner, owner)
	}
	clean()
	t.Cleanup(clean)
	m := catalog.Manager{
		Kind:    catalog.KindDocker,
		Servers: []catalog.Server{{Name: "eng-a", Address: "127.0.0.1", Slots: 2, Ports: catalog.PortRange{First: 21920, Last: 21929}}},
		Node:    catalog.NodeBoot{Temporal: "host.docker.internal:1", Namespace: "default", MSM: catalog.DefaultMSM},
		Docker:  catalog.Docker{Image: img, Socket: catalog.DefaultDockerSocket},
	}
	token := trust.ServerKey(trust.Generate("k1"), owner, "eng-a").Encode()
	_, err = docker.New(m, owner).Create(context.Background(), owner+"/eng-a", providers.Spec{Owner: owner, Name: "eng-a", JoinToken: token})
	require.NoError(t, err)
	out, err := exec.Command("docker", "inspect", "--format", "{{json .Config.Env}}", docker.NodeName(owner, "eng-a")).Output()
	require.NoError(t, err)
	var env []string
	require.NoError(t, json.Unmarshal(out, &env))
	require.Contains(t, env, docker.JoinTokenEnv+"="+token)
}
