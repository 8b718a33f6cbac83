package codec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/msm-project/msm/internal/trust"
)

func json(s string) Payload {
	return Payload{Metadata: map[string][]byte{MetaEncoding: []byte("json/plain")}, Data: []byte(s)}
}

func TestSealAndOpen(t *testing.T) {
	k1, k2 := trust.Generate("k1"), trust.Generate("k2")
	old, err := New(k1)
	require.NoError(t, err)
	rotated, err := New(k2, k1)
	require.NoError(t, err)
	secret := `{"env":{"DB_PASSWORD":"hunter2-` + strings.Repeat("x", 200) + `"}}`

	sealed, err := old.Encode(json(secret))
	require.NoError(t, err)
	assert.True(t, Sealed(sealed))
	assert.Equal(t, "k1", string(sealed.Metadata[MetaKeyID]))
	assert.NotContains(t, string(sealed.Data), "hunter2")
	assert.Less(t, len(sealed.Data), len(secret), "compressed before it was sealed")

	for name, c := range map[string]*Codec{"the same ring": old, "a ring rotated to k2 that keeps k1": rotated} {
		got, err := c.Decode(sealed)
		require.NoError(t, err, name)
		assert.Equal(t, json(secret), got, name)
	}
	again, err := rotated.Encode(json("short"))
	require.NoError(t, err)
	assert.Equal(t, "k2", string(again.Metadata[MetaKeyID]), "new payloads under the current key")
	_, err = old.Decode(again)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `encrypted with key "k2", which the codec key file does not hold (it holds [k1])`)

	plain := json(`{"a":1}`)
	got, err := old.Decode(plain)
	require.NoError(t, err)
	assert.Equal(t, plain, got, "a payload that is not encrypted passes through")

	tampered := Payload{Metadata: sealed.Metadata, Data: bytes.Clone(sealed.Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	_, err = old.Decode(tampered)
	assert.ErrorContains(t, err, "was altered")
	renamed := Payload{Metadata: map[string][]byte{MetaEncoding: []byte(Encoding), MetaKeyID: []byte("k2")}, Data: sealed.Data}
	_, err = rotated.Decode(renamed)
	assert.ErrorContains(t, err, "was altered", "the key ID is authenticated")
	other, err := New(trust.Generate("k1"))
	require.NoError(t, err)
	_, err = other.Decode(sealed)
	assert.ErrorContains(t, err, "sealed by another key of that ID")
	_, err = old.Decode(Payload{Metadata: sealed.Metadata, Data: []byte{1, 2}})
	assert.ErrorContains(t, err, "too short")
}

// TestPayloadEncodingIsTemporals: what MarshalPayload writes is a
// temporal.api.common.v1.Payload, and it reads one.
func TestPayloadEncodingIsTemporals(t *testing.T) {
	p := Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "messageType": []byte("x")}, Data: []byte(`"hi"`)}
	var got commonpb.Payload
	require.NoError(t, proto.Unmarshal(MarshalPayload(p), &got))
	assert.Equal(t, p.Metadata, got.Metadata)
	assert.Equal(t, p.Data, got.Data)
	b, err := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/null")}})
	require.NoError(t, err)
	back, err := UnmarshalPayload(b)
	require.NoError(t, err)
	assert.Equal(t, Payload{Metadata: map[string][]byte{"encoding": []byte("binary/null")}}, back)
}

// TestInflationIsBounded: a sealed payload that inflates past MaxOpened
// (a compression bomb from whoever holds the key) is refused.
func TestInflationIsBounded(t *testing.T) {
	c, err := New(trust.Generate("k1"))
	require.NoError(t, err)
	big, err := c.Encode(Payload{Data: bytes.Repeat([]byte{'a'}, MaxOpened+10)})
	require.NoError(t, err)
	assert.Less(t, len(big.Data), 64<<10)
	_, err = c.Decode(big)
	assert.ErrorContains(t, err, "inflates past")
}
