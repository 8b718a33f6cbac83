package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/workflows"
)

func TestAgentsBehind(t *testing.T) {
	servers := []workflows.ServerStatus{{ID: "s1", State: "ready", Node: "v2"}, {ID: "s2", State: "ready"}, {ID: "s3", State: "draining", Node: "v2"}}
	c := func(id, server, state, service, agent string) workflows.ContainerStatus {
		return workflows.ContainerStatus{ID: id, Server: server, State: state, Service: service, Agent: agent}
	}
	st := workflows.Status{Servers: servers, Containers: []workflows.ContainerStatus{
		c("c1", "s1", "loaded", "web", "v1"),
		c("c2", "s1", "loaded", "web", "v2"),
		c("c3", "s1", "waiting", "", "v1"),
		c("c4", "s1", "loaded", "api", ""),
		c("c5", "s2", "loaded", "web", "v1"),    // its node's version not known
		c("c6", "s3", "loaded", "web", "v1"),    // a draining server's
		c("c7", "s1", "draining", "web", "v1"),  // on its way out
		c("c8", "s1", "starting", "web", "old"), // counted: it stays
	}, Services: []workflows.ServiceStatus{
		{Name: "web", Rollout: &workflows.RolloutStatus{Rollout: workflows.Rollout{State: workflows.RollRolling, Agents: true}}},
		{Name: "api", Rollout: &workflows.RolloutStatus{Rollout: workflows.Rollout{State: workflows.RollFailed, Agents: true, Error: "api failed its health check"}}},
	}}
	for _, tc := range []struct {
		name     string
		services []string
		want     string
		done     bool
		stopped  []string
	}{
		{"every service", nil, "agents behind their node: web 2, waiting 1, api 1", false, []string{"api: api failed its health check"}},
		{"one service, and what waits", []string{"web"}, "agents behind their node: web 2, waiting 1", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agentsBehind(st, tc.services)
			assert.Equal(t, tc.want, got.String())
			assert.Equal(t, tc.done, got.done())
			assert.Equal(t, tc.stopped, stoppedRolls(st, tc.services))
		})
	}
	done := agentsBehind(workflows.Status{Servers: servers, Containers: []workflows.ContainerStatus{c("c2", "s1", "loaded", "web", "v2")}}, nil)
	assert.True(t, done.done())
	assert.Equal(t, "every agent runs its node's version", done.String())
}
