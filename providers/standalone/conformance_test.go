package standalone_test

import (
	"testing"

	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/providertest"
	"github.com/msm-project/msm/providers/standalone"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		New:   func(*testing.T, string) providers.Provider { return standalone.New(hosts) },
		Names: [2]string{"h1", "h2"},
	})
}
