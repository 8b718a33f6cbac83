// Package codec encrypts Temporal payloads with AES-256-GCM, so that what
// msm's workflows carry (catalogs with their services' env values, plans,
// service output) is stored in Temporal's histories as ciphertext. A payload
// is compressed (when that makes it smaller), then sealed under the current
// key of a key ring; its metadata names the key, so that payloads sealed
// under an older key still open after a rotation, as long as the ring holds
// it. Payloads that are not encrypted pass through Decode unchanged.
//
// The package needs only the standard library and protowire: the container
// agent, which links no Temporal SDK, seals and opens its payloads with it
// too (internal/wire); starter adapts it to the SDK's PayloadCodec.
package codec

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/msm-project/msm/internal/trust"
)

// Payload is a Temporal payload: its metadata and its bytes.
type Payload struct {
	Metadata map[string][]byte
	Data     []byte
}

// Metadata of a sealed payload.
const (
	MetaEncoding = "encoding"
	// Encoding is the encoding of a sealed payload.
	Encoding = "binary/encrypted"
	// MetaKeyID names the key a payload is sealed under.
	MetaKeyID = "encryption-key-id"
)

// The first byte of a sealed payload's plaintext says how the rest is
// packed.
const (
	packRaw   = 0
	packFlate = 1
)

// MaxOpened bounds what one payload opens to: Temporal's own limit on a
// payload is 2 MB, so a larger one is no payload of msm's (and could be a
// compression bomb).
const MaxOpened = 4 << 20

// Codec seals and opens payloads with a key ring; it is safe for
// concurrent use.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
}

// New returns a codec of keys, the first current.
func New(keys ...trust.Key) (*Codec, error) {
	ring, err := trust.NewRing(keys...)
	if err != nil {
		return nil, err
	}
	c := &Codec{current: ring.Current().ID, aeads: map[string]cipher.AEAD{}}
	for _, id := range ring.IDs() {
		k, _ := ring.Key(id)
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		if c.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Load returns a codec of the keys in a key file (trust.ReadKeys: one key
// per line, the current first, readable by its owner only).
func Load(path string) (*Codec, error) {
	keys, err := trust.ReadKeys(path)
	if err != nil {
		return nil, err
	}
	return New(keys...)
}

// KeyIDs lists the codec's key IDs, the current first.
func (c *Codec) KeyIDs() []string {
	ids := []string{c.current}
	for _, id := range slices.Sorted(maps.Keys(c.aeads)) {
		if id != c.current {
			ids = append(ids, id)
		}
	}
	return ids
}

// Encode seals p under the current key.
func (c *Codec) Encode(p Payload) (Payload, error) {
	inner := MarshalPayload(p)
	plain := append([]byte{packRaw}, inner...)
	if len(inner) > 64 {
		var b bytes.Buffer
		b.WriteByte(packFlate)
		w, _ := flate.NewWriter(&b, flate.DefaultCompression)
		w.Write(inner)
		w.Close()
		if b.Len() < len(plain) {
			plain = b.Bytes()
		}
	}
	aead := c.aeads[c.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Payload{}, fmt.Errorf("sealing a payload, %w", err)
	}
	return Payload{
		Metadata: map[string][]byte{MetaEncoding: []byte(Encoding), MetaKeyID: []byte(c.current)},
		// The key ID is authenticated too: a payload moved under another
		// key's name does not open.
		Data: aead.Seal(nonce, nonce, plain, []byte(c.current)),
	}, nil
}

// Sealed reports whether p is a payload Encode made.
func Sealed(p Payload) bool { return string(p.Metadata[MetaEncoding]) == Encoding }

// Decode opens a sealed payload; any other passes through as it is.
func (c *Codec) Decode(p Payload) (Payload, error) {
	if !Sealed(p) {
		return p, nil
	}
	id := string(p.Metadata[MetaKeyID])
	aead, ok := c.aeads[id]
	if !ok {
		return Payload{}, fmt.Errorf("a payload is encrypted with key %q, which the codec key file does not hold (it holds %v); add that key to the file", id, c.KeyIDs())
	}
	if len(p.Data) < aead.NonceSize()+aead.Overhead() {
		return Payload{}, errors.New("an encrypted payload is too short to be one")
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
	if err != nil || len(plain) == 0 {
		return Payload{}, fmt.Errorf("an encrypted payload does not open with key %q: it was altered, or sealed by another key of that ID", id)
	}
	inner := plain[1:]
	switch plain[0] {
	case packRaw:
	case packFlate:
		b, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(inner)), MaxOpened+1))
		if err != nil {
			return Payload{}, fmt.Errorf("inflating an encrypted payload, %w", err)
		}
		if len(b) > MaxOpened {
			return Payload{}, fmt.Errorf("an encrypted payload inflates past %d bytes", MaxOpened)
		}
		inner = b
	default:
		return Payload{}, fmt.Errorf("an encrypted payload is packed as %d, which this msm does not know", plain[0])
	}
	return UnmarshalPayload(inner)
}

// MarshalPayload encodes p as a temporal.api.common.v1.Payload message
// (metadata map 1, data 2), metadata in key order.
func MarshalPayload(p Payload) []byte {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(p.Metadata)) {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, p.Metadata[k])
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	if len(p.Data) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, p.Data)
	}
	return b
}

// UnmarshalPayload reads a temporal.api.common.v1.Payload message.
func UnmarshalPayload(b []byte) (Payload, error) {
	p := Payload{Metadata: map[string][]byte{}}
	err := each(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			var k string
			var val []byte
			if err := each(v, func(num protowire.Number, v []byte) error {
				switch num {
				case 1:
					k = string(v)
				case 2:
					val = v
				}
				return nil
			}); err != nil {
				return err
			}
			p.Metadata[k] = val
		case 2:
			p.Data = v
		}
		return nil
	})
	if err != nil {
		return Payload{}, fmt.Errorf("reading an opened payload, %w", err)
	}
	return p, nil
}

// each calls fn with each length-delimited field of a message; other wire
// types are skipped.
func each(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
