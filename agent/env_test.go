package agent

import (
	"reflect"
	"testing"
)

// TestServiceEnvPassesOnlyTheBasics: a MicroService inherits the basics
// of any program and its container's MSM_ names; the agent's Temporal and
// cloud credentials, and anything else the node was started with, stay
// with the agent.
func TestServiceEnvPassesOnlyTheBasics(t *testing.T) {
	got := serviceEnv([]string{"PATH=/bin", "TEMPORAL_ADDRESS=127.0.0.1:7233", "TEMPORAL_API_KEY=secret",
		"TEMPORAL_API_KEY_FILE=/run/key", "AWS_SECRET_ACCESS_KEY=x", "AZURE_CLIENT_SECRET=y", "HOME=/root",
		"MSM_TEMPORAL_ADDRESS=z", "MSM_MANAGER=local", "MSM_CONTAINER=c1", "DATABASE_PASSWORD=hunter2",
		"LC_ALL=C.UTF-8", "TZ=UTC", "GOCOVERDIR=/tmp/x", "MSM_CODEC_KEY_FILE=/k", "PATHOLOGICAL=1"})
	want := []string{"PATH=/bin", "HOME=/root", "MSM_MANAGER=local", "MSM_CONTAINER=c1", "LC_ALL=C.UTF-8", "TZ=UTC"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("serviceEnv = %v, want %v", got, want)
	}
}
