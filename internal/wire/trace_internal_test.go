package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// TestTraceparentOfTheSDKsHeader reads the header the SDK's tracing
// interceptor writes: a JSON map under _tracer-data.
func TestTraceparentOfTheSDKsHeader(t *testing.T) {
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	data, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"traceparent": tp, "baggage": "k=v"})
	require.NoError(t, err)
	other, err := converter.GetDefaultDataConverter().ToPayload("something else")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		header *commonpb.Header
		want   string
	}{
		{"traced", &commonpb.Header{Fields: map[string]*commonpb.Payload{tracerHeader: data, "other": other}}, tp},
		{"no tracer's field", &commonpb.Header{Fields: map[string]*commonpb.Payload{"other": other}}, ""},
		{"empty", &commonpb.Header{}, ""},
		{"not a map", &commonpb.Header{Fields: map[string]*commonpb.Payload{tracerHeader: other}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.header)
			require.NoError(t, err)
			assert.Equal(t, tc.want, traceparentOf(b))
		})
	}
	assert.Equal(t, "", traceparentOf([]byte{0xff}), "a malformed header is no trace")
}
