// Package heartbeat is how a node knows that the agents it started are
// alive: a file each agent touches, and the window of silence after which
// it is hung. Standard library and the catalog only, so msm-agent links it.
package heartbeat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
)

// Env names the file a node gives each agent it starts to show
// that it is alive (a hung agent — stopped, wedged — neither exits nor
// answers, and only this tells): the agent touches the file every
// Every, and writes into it how long a silence means it is hung (Window).
// The node reports an agent silent longer than that as failed
// (agentapi.CauseAgentHung) and kills it; the file outlives a node restart,
// so re-attached agents are watched too.
const Env = "MSM_AGENT_HEARTBEAT"

// Every is how often an agent touches its heartbeat file.
const Every = 250 * time.Millisecond

// DefaultWindow is the silence after which an agent with no service
// loaded (a waiting container) is hung: the default health window.
const DefaultWindow = 6 * time.Second

// Window is the silence after which the agent of a container running
// a service with health check h is hung: the service's own health window
// (interval × failure threshold), the time its agent would take to call
// the service failed, and never under four heartbeats.
func Window(h catalog.HealthCheck) time.Duration {
	interval, n := h.Interval, h.FailureThreshold
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if n <= 0 {
		n = 3
	}
	return max(interval*time.Duration(n), 4*Every)
}

// Write writes window into the heartbeat file at path, which touches it
// too.
func Write(path string, window time.Duration) error {
	if err := os.WriteFile(path, []byte(strconv.FormatInt(window.Milliseconds(), 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the heartbeat file, %w", err)
	}
	return nil
}

// Beat touches the heartbeat file at path: the agent is alive now.
func Beat(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}

// Read reads the heartbeat file at path: when its agent last
// touched it, and the silence after which it is hung.
func Read(path string) (last time.Time, window time.Duration, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, 0, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, 0, err
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || ms <= 0 {
		return fi.ModTime(), DefaultWindow, nil
	}
	return fi.ModTime(), time.Duration(ms) * time.Millisecond, nil
}
