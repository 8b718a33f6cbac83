package workflows

import (
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/trust"
)

// FuzzSignalDecoders: whatever a client of the namespace signals the
// Manager, decoding it as the Manager does (the SDK's default converter,
// JSON) and checking it as an authenticating Manager does neither panics
// nor passes: no report made without the keys is acted on. A catalog that
// decodes is validated within the bounds of catalog.Validate.
func FuzzSignalDecoders(f *testing.F) {
	root := trust.Key{ID: "k1", Secret: []byte(strings.Repeat("r", trust.KeySize))}
	ring, err := trust.NewRing(root)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"container":"m1-c1","service":"web","reason":"boom","auth":"k1:AAAA"}`,
		`{"server":"s1","containers":[]}`,
		`{"server":"s1","cpu":100,"memory":100,"containers":[{"container":"m1-c1","cpu":100}],"auth":"k1:"}`,
		`{"op":"msm/m1/provision/1","step":"server","server":"s1","ok":true,"address":"10.6.6.6"}`,
		`{"steps":[{"op":"msm/m1/provision/1","step":"start","container":"m1-c1","ok":true}],"auth":"k9:x"}`,
		`{"catalog":{},"source":"forged.yaml"}`,
		`{"catalog":{"manager":{"kind":"standalone","servers":[{"name":"s1","address":"127.0.0.1","slots":4,"ports":"20000-20009"}]},"services":[{"name":"web","command":"x","replicas":{"min":1,"max":2}}]},"source":"x"}`,
		`"just a string"`, `null`, `[1,2,3]`, `{"container":7}`,
	} {
		f.Add([]byte(seed))
	}
	dc := converter.GetDefaultDataConverter()
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &manager{ring: ring, ops: []runningOp{{id: "msm/m1/provision/1"}}, st: ManagerInput{Manager: "m1", Inventory: fleet.Inventory{
			Servers:    []fleet.Server{{ID: "s1", State: fleet.ServerReady}},
			Containers: []fleet.Container{{ID: "m1-c1", Server: "s1", State: fleet.Loaded, Service: "web"}},
		}}}
		p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: data}
		checks := map[string]func() (string, bool){
			SignalErrorReport: func() (string, bool) {
				var v ErrorReport
				return decodeCheck(dc, p, &v, func() string { return m.fromContainer(v.Container, v.Auth, v.Fields()) })
			},
			SignalOverload: func() (string, bool) {
				var v OverloadSignal
				return decodeCheck(dc, p, &v, func() string { return m.fromContainer(v.Container, v.Auth, v.Fields()) })
			},
			SignalIdle: func() (string, bool) {
				var v IdleSignal
				return decodeCheck(dc, p, &v, func() string { return m.fromContainer(v.Container, v.Auth, v.Fields()) })
			},
			SignalRegister: func() (string, bool) {
				var v RegisterSignal
				return decodeCheck(dc, p, &v, func() string { return m.fromContainer(v.Container, v.Auth, v.Fields()) })
			},
			SignalNodeUp: func() (string, bool) {
				var v NodeUpSignal
				return decodeCheck(dc, p, &v, func() string { return m.fromServer(v.Server, v.Auth, v.Fields()) })
			},
			SignalUsage: func() (string, bool) {
				var v UsageSignal
				return decodeCheck(dc, p, &v, func() string { return m.checkUsage(v) })
			},
			SignalResult: func() (string, bool) {
				var v StepResult
				return decodeCheck(dc, p, &v, func() string { return m.fromOperation(v.Op, v.Auth, []StepResult{v}, v.Fields()) })
			},
			SignalResults: func() (string, bool) {
				var v StepResults
				return decodeCheck(dc, p, &v, func() string { return m.fromOperation(firstOp(v), v.Auth, v.Steps, v.Fields()) })
			},
			SignalCatalogRejected: func() (string, bool) {
				var v CatalogRejectedSignal
				return decodeCheck(dc, p, &v, func() string { return m.fromWorker(v.Auth, v.Fields()) })
			},
			SignalCatalog: func() (string, bool) {
				var v CatalogSignal
				return decodeCheck(dc, p, &v, func() string {
					d := v.Catalog
					d.Services = append([]catalog.Service(nil), d.Services...)
					d.Default()
					_ = d.Validate()
					return m.fromWorker(v.Auth, v.Fields())
				})
			},
		}
		for name, check := range checks {
			if why, decoded := check(); decoded && why == "" {
				t.Fatalf("a %s report made without the keys passed: %q", name, data)
			}
		}
	})
}

// decodeCheck decodes p into v as a signal channel does and, when it
// decodes, runs check.
func decodeCheck(dc converter.DataConverter, p *commonpb.Payload, v any, check func() string) (string, bool) {
	if err := dc.FromPayload(p, v); err != nil {
		return "", false
	}
	return check(), true
}
