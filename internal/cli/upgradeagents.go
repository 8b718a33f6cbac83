package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// upgradeAgents is `msm upgrade agents [SERVICE...] [--wait DURATION]`: the
// Manager replaces the loaded instances whose agent is behind their node's
// version, extend then destroy, one roll per service (msm rollout status
// follows each); the waiting ones it replaces through the warm pool by
// itself. With --wait it says how many are left as they go, until none is
// (exit 0), a roll stops (exit 1) or the time is up (exit 1).
func (e *env) upgradeAgents(args []string) error {
	var c common
	fs := e.flags("upgrade agents", &c)
	wait := fs.Duration("wait", 0, "wait up to this long until every agent runs its node's version, saying how many are left (0: ask and return)")
	// Services may come before or after the flags.
	var services []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		services, args = append(services, args[0]), args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	services = append(services, fs.Args()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+*wait)
	defer cancel()
	cl, err := e.dial(ctx, &c, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := starter.Update(ctx, cl, c.Manager, workflows.UpdateUpgradeAgents, workflows.AgentUpgrade{Services: services})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.Message)
	if *wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(*wait)
	said := ""
	for {
		st, err := starter.Status(ctx, cl, c.Manager)
		if err != nil {
			return err
		}
		left := agentsBehind(st, services)
		stopped := stoppedRolls(st, services)
		now := left.String()
		if now != said {
			fmt.Fprintf(e.stdout, "%s  %s\n", time.Now().Format("15:04:05"), now)
			said = now
		}
		switch {
		case len(stopped) > 0:
			fmt.Fprintf(e.stdout, "Stopped: %s (`msm rollout status` says why; `msm rollout resume SERVICE` goes on)\n", strings.Join(stopped, "; "))
			return &exitError{code: 1}
		case left.done():
			fmt.Fprintln(e.stdout, "Every agent runs its node's version")
			return nil
		case time.Now().After(deadline):
			fmt.Fprintf(e.stdout, "Not done after %s: the rolls go on (`msm rollout status`)\n", *wait)
			return &exitError{code: 1}
		}
		time.Sleep(time.Second)
	}
}

// behindCount is what is left of an agent upgrade, by service ("" waiting).
type behindCount struct {
	services []string
	n        map[string]int
	rolling  int
}

func (b behindCount) done() bool { return len(b.services) == 0 && b.rolling == 0 }

func (b behindCount) String() string {
	if len(b.services) == 0 {
		if b.rolling > 0 {
			return fmt.Sprintf("every agent runs its node's version; %d roll(s) removing the last old instance(s)", b.rolling)
		}
		return "every agent runs its node's version"
	}
	var parts []string
	for _, s := range b.services {
		name := s
		if s == "" {
			name = "waiting"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, b.n[s]))
	}
	return "agents behind their node: " + strings.Join(parts, ", ")
}

// agentsBehind counts the containers of services (all when none) whose
// agent is behind their node, as the Manager does (fleet.AgentBehind), and
// the agent rolls still under way.
func agentsBehind(st workflows.Status, services []string) behindCount {
	nodes := map[string]string{}
	draining := map[string]bool{}
	for _, s := range st.Servers {
		nodes[s.ID] = s.Node
		draining[s.ID] = s.State == string(fleet.ServerDraining)
	}
	out := behindCount{n: map[string]int{}}
	for _, c := range st.Containers {
		if draining[c.Server] || (len(services) > 0 && c.Service != "" && !slices.Contains(services, c.Service)) {
			continue
		}
		if c.State != string(fleet.Loaded) && c.State != string(fleet.Starting) && c.State != string(fleet.Waiting) {
			continue
		}
		if !fleet.AgentBehind(fleet.Container{Server: c.Server, Agent: c.Agent}, nodes) {
			continue
		}
		if out.n[c.Service] == 0 {
			out.services = append(out.services, c.Service)
		}
		out.n[c.Service]++
	}
	for _, s := range st.Services {
		if r := s.Rollout; r != nil && r.Agents && (r.State == workflows.RollRolling || r.State == workflows.RollRollingBack) &&
			(len(services) == 0 || slices.Contains(services, s.Name)) {
			out.rolling++
		}
	}
	return out
}

// stoppedRolls are the agent rolls of services (all when none) that stopped.
func stoppedRolls(st workflows.Status, services []string) []string {
	var out []string
	for _, s := range st.Services {
		if r := s.Rollout; r != nil && r.Agents && r.State == workflows.RollFailed && (len(services) == 0 || slices.Contains(services, s.Name)) {
			out = append(out, s.Name+": "+r.Error)
		}
	}
	return out
}
