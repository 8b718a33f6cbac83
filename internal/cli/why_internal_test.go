package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/workflows"
)

func TestPrintWhy(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.Local)
	w := workflows.Why{Service: "web", Desired: 3, Ready: 3, Min: 1, Max: 6, Cooldown: 30 * time.Second,
		CooldownUntil: now.Add(20 * time.Second), Suppressed: 2,
		Decisions: []workflows.Record{
			{Seq: 7, Time: now.Add(-10 * time.Second), Kind: workflows.RecordExtend, Services: []string{"web"},
				Trigger: "overload reported by dev-c3: cpu 93% above 80% for 10s", Message: "extend web from 2 to 3 instance(s)"},
			{Seq: 8, Time: now.Add(-10 * time.Second), Kind: workflows.RecordExtend, Services: []string{"web"}, Op: "msm/dev/extend/web/5",
				Message: "msm/dev/extend/web/5: 0 server(s) to launch, 0 container(s) to start, 1 to load",
				Why:     "web: 1 instance(s) below its desired 3; 1 from the warm pool", Outcome: "msm/dev/extend/web/5 done: 0 started, 1 loaded, 0 failed (took 310ms)"},
		}}
	var out bytes.Buffer
	printWhy(&out, w, now)
	text := out.String()
	for _, want := range []string{
		"web: 3/3 ready, desired 3 (replicas 1..6)\n",
		"  - healthy: 3/3 instance(s) ready\n",
		"  - in cooldown until ", "(in 20s, scaling.cooldown 30s)", "2 report(s) ignored so far",
		"Last decisions:\n",
		"09:59:50.000  extend      web          extend web from 2 to 3 instance(s)\n",
		"trigger: overload reported by dev-c3: cpu 93% above 80% for 10s\n",
		"why: web: 1 instance(s) below its desired 3; 1 from the warm pool\n",
		"outcome: msm/dev/extend/web/5 done: 0 started, 1 loaded, 0 failed (took 310ms)\n",
	} {
		assert.Contains(t, text, want)
	}

	out.Reset()
	printWhy(&out, workflows.Why{Service: "api", Desired: 1, Ready: 1, Min: 1, Max: 1}, now)
	assert.Equal(t, "api: 1/1 ready, desired 1 (replicas 1..1)\n"+
		"  - healthy: 1/1 instance(s) ready\n"+
		"  - at its max of 1 instance(s) (replicas.max): overload reports change nothing; raise replicas.max to go further\n"+
		"\nNo decision about it yet.\n", out.String())

	out.Reset()
	printWhy(&out, workflows.Why{Service: "web", Desired: 4, Ready: 4, Min: 1, Max: 6, Floor: 4, FloorBy: `schedule msm/dev/schedule/web/0 ("0 8 * * 1-5")`}, now)
	assert.Equal(t, "web: 4/4 ready, desired 4 (replicas 1..6, floor 4)\n"+
		"  - healthy: 4/4 instance(s) ready\n"+
		`  - floor of 4 instance(s), set by schedule msm/dev/schedule/web/0 ("0 8 * * 1-5"): idle reports shrink it no lower; overload may add above it`+"\n"+
		"\nNo decision about it yet.\n", out.String())
}
