package catalog

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    PortRange
		wantErr string
	}{
		{name: "range", in: "20000-20099", want: PortRange{20000, 20099}},
		{name: "spaces", in: " 20000 - 20099 ", want: PortRange{20000, 20099}},
		{name: "one port", in: "8080-8080", want: PortRange{8080, 8080}},
		// The form is right; Validate reports the order and the bounds.
		{name: "reversed parses", in: "20099-20000", want: PortRange{20099, 20000}},
		{name: "zero parses", in: "0-10", want: PortRange{0, 10}},
		{name: "single number", in: "20000", wantErr: `"20000" is not a port range; write it as FIRST-LAST, e.g. "20000-20099"`},
		{name: "empty", in: "", wantErr: `"" is not a port range`},
		{name: "open end", in: "20000-", wantErr: `"20000-" is not a port range`},
		{name: "negative", in: "-1-5", wantErr: `"-1-5" is not a port range`},
		{name: "words", in: "low-high", wantErr: `"low-high" is not a port range`},
		{name: "colon", in: "20000:20099", wantErr: `"20000:20099" is not a port range`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePortRange(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPortRangeMethods(t *testing.T) {
	r := PortRange{21000, 21099}
	assert.Equal(t, "21000-21099", r.String())
	assert.Equal(t, 100, r.Size())
	assert.Equal(t, 0, PortRange{5, 4}.Size())
	assert.True(t, r.Contains(21000))
	assert.True(t, r.Contains(21099))
	assert.False(t, r.Contains(20999))
	assert.False(t, r.Contains(21100))
	assert.True(t, PortRange{}.IsZero())
	assert.False(t, r.IsZero())

	tests := []struct {
		name string
		a, b PortRange
		want PortRange
		ok   bool
	}{
		{"disjoint", PortRange{1, 10}, PortRange{11, 20}, PortRange{}, false},
		{"touching", PortRange{1, 10}, PortRange{10, 20}, PortRange{10, 10}, true},
		{"inside", PortRange{1, 100}, PortRange{40, 50}, PortRange{40, 50}, true},
		{"same", PortRange{1, 10}, PortRange{1, 10}, PortRange{1, 10}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.a.overlap(tc.b)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.want, got)
			}
			_, okBack := tc.b.overlap(tc.a)
			assert.Equal(t, ok, okBack, "overlap is symmetric")
		})
	}
}

// Other code may unmarshal the types with yaml.v3 directly, without Parse.
func TestPortRangeYAML(t *testing.T) {
	out, err := yaml.Marshal(Server{Name: "a", Address: "h", Slots: 1, Ports: PortRange{20000, 20099}})
	require.NoError(t, err)
	assert.Contains(t, string(out), "ports: 20000-20099\n")

	var s Server
	require.NoError(t, yaml.Unmarshal(out, &s))
	assert.Equal(t, PortRange{20000, 20099}, s.Ports)

	err = yaml.Unmarshal([]byte("ports: 20000\n"), &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"20000" is not a port range`)

	err = yaml.Unmarshal([]byte("ports: [1, 2]\n"), &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a port range is a single value")
}

// The types travel in workflow inputs as JSON.
func TestCatalogJSONRoundTrip(t *testing.T) {
	c, err := Load("../examples/catalog.yaml")
	require.NoError(t, err)
	data, err := json.Marshal(c)
	require.NoError(t, err)
	var back Catalog
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, c, &back)
}
