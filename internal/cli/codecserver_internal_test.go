package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/starter"
)

// TestCodecServer: /decode opens what the workers sealed and /encode seals,
// as the SDK's remote codec (the temporal CLI's --codec-endpoint) calls
// them; a listed origin gets its CORS answers, another none; with a token,
// a request without it is refused.
func TestCodecServer(t *testing.T) {
	c, err := codec.New(trust.Generate("c1"))
	require.NoError(t, err)
	srv := httptest.NewServer(codecHandler(c, []string{"http://localhost:8233"}, "t0ken"))
	defer srv.Close()
	dc := converter.GetDefaultDataConverter()
	plain, err := dc.ToPayload(map[string]string{"DB_PASSWORD": "hunter2"})
	require.NoError(t, err)
	sealed, err := starter.PayloadCodec(c).Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.NotContains(t, string(sealed[0].Data), "hunter2")

	auth := func(r *http.Request) error { r.Header.Set("Authorization", "Bearer t0ken"); return nil }
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL, ModifyRequest: auth})
	opened, err := remote.Decode(sealed)
	require.NoError(t, err)
	var got map[string]string
	require.NoError(t, dc.FromPayload(opened[0], &got))
	assert.Equal(t, "hunter2", got["DB_PASSWORD"])
	resealed, err := remote.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	assert.Equal(t, codec.Encoding, string(resealed[0].Metadata["encoding"]))

	noToken := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL})
	_, err = noToken.Decode(sealed)
	require.Error(t, err)

	pre, err := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	require.NoError(t, err)
	pre.Header.Set("Origin", "http://localhost:8233")
	resp, err := http.DefaultClient.Do(pre)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "http://localhost:8233", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")

	body, err := json.Marshal(map[string]any{"payloads": []any{}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "an origin not listed gets no CORS grant")

	big, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", strings.NewReader(`{"payloads":[{"data":"`+strings.Repeat("A", maxCodecRequest)+`"}]}`))
	require.NoError(t, err)
	big.Header.Set("Authorization", "Bearer t0ken")
	resp, err = http.DefaultClient.Do(big)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a body past the bound is refused")
}
