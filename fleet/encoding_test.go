package fleet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestContainerListRoundTrips: every field a container carries survives
// the compact encoding (continue-as-new), its revision and when it became
// healthy too; rows of Managers from before revisions still decode.
func TestContainerListRoundTrips(t *testing.T) {
	ready := time.Date(2026, 12, 7, 14, 0, 0, 123e6, time.UTC)
	in := ContainerList{
		{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded, Service: "web", Healthy: true, Registered: true, PID: 101, Revision: "aaaa", ReadyAt: ready},
		{ID: "m-c2", Server: "s1", Port: 20001, State: Loaded, Service: "web", Healthy: true, PID: 102, Revision: "bbbb"},
		{ID: "m-c6", Server: "s1", Port: 20002, State: Loaded, Service: "app", Healthy: true, PID: 106, Image: "app:2", Revision: "cccc"},
		{ID: "m-c3", Server: "s2", Port: 21000, State: Failed, Service: "api", Crashed: true, Error: "api exited", Revision: "aaaa"},
		{ID: "m-c4", Server: "s2", Port: 21001, State: Waiting, Registered: true, PID: 104},
		{ID: "m-c5", Server: "s2", Port: 21002, State: Draining, Service: "web", Unloading: true, Error: "x"},
		{ID: "m-c7", Server: "s2", Port: 21003, State: Waiting, Registered: true, PID: 107, Agent: "v2"},
		{ID: "m-c8", Server: "s1", Port: 20003, State: Loaded, Service: "web", Healthy: true, PID: 108, Revision: "aaaa", ReadyAt: ready, Agent: "v1"},
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out ContainerList
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)
	assert.Contains(t, string(b), `"revisions":["","aaaa","bbbb","cccc"]`, "each revision named once")
	assert.Contains(t, string(b), `["m-c4",1,21001,"waiting",0,2,104]`, "a container without a revision costs nothing more")
	assert.Contains(t, string(b), `"agents":["","v2","v1"]`, "each agent version named once")
	assert.Contains(t, string(b), `["m-c7",1,21003,"waiting",0,2,107,"",-1,0,0,1]`, "an agent's version, by its index")

	legacy := `{"servers":["s1"],"services":["","web"],"rows":[["m-c1",0,20000,"loaded",1,3,101],["m-c2",0,20001,"failed",1,0,0,"boom"]]}`
	require.NoError(t, json.Unmarshal([]byte(legacy), &out))
	assert.Equal(t, ContainerList{
		{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded, Service: "web", Healthy: true, Registered: true, PID: 101},
		{ID: "m-c2", Server: "s1", Port: 20001, State: Failed, Service: "web", Error: "boom"},
	}, out)
	bad := `{"servers":["s1"],"services":["","web"],"revisions":["","a"],"rows":[["m-c1",0,20000,"loaded",1,3,101,"",-1,5,0]]}`
	assert.ErrorContains(t, json.Unmarshal([]byte(bad), &out), "names revision 5, beyond the list")
	bad = `{"servers":["s1"],"services":["","web"],"agents":["","v1"],"rows":[["m-c1",0,20000,"waiting",0,2,101,"",-1,0,0,2]]}`
	assert.ErrorContains(t, json.Unmarshal([]byte(bad), &out), "names agent version 2, beyond the list")
}
