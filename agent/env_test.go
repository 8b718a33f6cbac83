package agent

import (
	"reflect"
	"testing"
)

// TestServiceEnvDropsControlPlaneVariables: the agent's Temporal and cloud
// credentials never reach its MicroService; the rest passes.
func TestServiceEnvDropsControlPlaneVariables(t *testing.T) {
	got := serviceEnv([]string{"PATH=/bin", "TEMPORAL_ADDRESS=127.0.0.1:7233", "TEMPORAL_API_KEY=secret",
		"TEMPORAL_API_KEY_FILE=/run/key", "AWS_SECRET_ACCESS_KEY=x", "AZURE_CLIENT_SECRET=y", "HOME=/root", "MSM_TEMPORAL_ADDRESS=z", "MSM_MANAGER=local"})
	want := []string{"PATH=/bin", "HOME=/root", "MSM_MANAGER=local"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("serviceEnv = %v, want %v", got, want)
	}
}
