package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/msm-project/msm/internal/codec"
)

// The field numbers below are those of Temporal's API
// (go.temporal.io/api, temporal/api/*.proto); wire_test.go decodes what
// this file encodes with the real message types, and the reverse.

// Payload is one value as Temporal carries it: its encoding and its bytes.
type Payload struct {
	Encoding string
	Data     []byte
	// Meta is the rest of its metadata (an encrypted payload's key ID).
	Meta map[string][]byte
}

// The encodings of the SDKs' default data converter that an agent meets.
const (
	encodingJSON = "json/plain"
	encodingNull = "binary/null"
)

// jsonPayload encodes v as the SDKs' default converter does.
func jsonPayload(v any) (Payload, error) {
	if v == nil {
		return Payload{Encoding: encodingNull}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Payload{}, fmt.Errorf("encoding %T as JSON, %w", v, err)
	}
	return Payload{Encoding: encodingJSON, Data: b}, nil
}

// seal encrypts p with c when there is one.
func seal(c *codec.Codec, p Payload) (Payload, error) {
	if c == nil {
		return p, nil
	}
	s, err := c.Encode(p.toCodec())
	if err != nil {
		return Payload{}, err
	}
	return fromCodec(s), nil
}

// open decrypts the encrypted payloads of ps with c; without a codec an
// encrypted payload stays as it is (and fails to decode, saying so).
func open(c *codec.Codec, ps []Payload) ([]Payload, error) {
	if c == nil {
		return ps, nil
	}
	out := make([]Payload, len(ps))
	for i, p := range ps {
		o, err := c.Decode(p.toCodec())
		if err != nil {
			return nil, err
		}
		out[i] = fromCodec(o)
	}
	return out, nil
}

// toCodec is p as a whole Temporal payload, its encoding among its
// metadata.
func (p Payload) toCodec() codec.Payload {
	m := map[string][]byte{"encoding": []byte(p.Encoding)}
	maps.Copy(m, p.Meta)
	return codec.Payload{Metadata: m, Data: p.Data}
}

func fromCodec(p codec.Payload) Payload {
	out := Payload{Encoding: string(p.Metadata["encoding"]), Data: p.Data}
	for k, v := range p.Metadata {
		if k != "encoding" {
			if out.Meta == nil {
				out.Meta = map[string][]byte{}
			}
			out.Meta[k] = v
		}
	}
	return out
}

// decode reads p into v (a pointer); a null payload leaves v as it is.
func (p Payload) decode(v any) error {
	switch p.Encoding {
	case encodingJSON:
		return json.Unmarshal(p.Data, v)
	case encodingNull:
		return nil
	default:
		if p.Encoding == codec.Encoding {
			return errors.New("the payload is encrypted and this agent has no codec key: give its node --codec-key-file, as the Manager's worker has")
		}
		return fmt.Errorf("payload encoded as %q: this agent reads only %s and %s (is a payload codec set on the Manager's worker?)",
			p.Encoding, encodingJSON, encodingNull)
	}
}

// appendPayloads appends a temporal.api.common.v1.Payloads as field num,
// each Payload as codec writes it.
func appendPayloads(b []byte, num protowire.Number, ps ...Payload) []byte {
	if len(ps) == 0 {
		return b
	}
	return appendMessage(b, num, func(b []byte) []byte {
		for _, p := range ps {
			b = appendBytes(b, 1, codec.MarshalPayload(p.toCodec()))
		}
		return b
	})
}

// parsePayloads reads a temporal.api.common.v1.Payloads.
func parsePayloads(b []byte) ([]Payload, error) {
	var out []Payload
	err := fields(b, func(num protowire.Number, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		p, err := codec.UnmarshalPayload(v)
		out = append(out, fromCodec(p))
		return err
	})
	return out, err
}

// appendFailure appends err as a temporal.api.failure.v1.Failure with an
// ApplicationFailureInfo, as the Go SDK converts an activity's error: an
// *Error keeps its type, retryability and cause; any other error is
// retryable and typed by its Go type's name.
func appendFailure(b []byte, num protowire.Number, err error) []byte {
	return appendMessage(b, num, func(b []byte) []byte {
		typ, nonRetryable, cause := goErrorType(err), false, error(nil)
		var e *Error
		if errors.As(err, &e) && e == err {
			typ, nonRetryable, cause = e.Type, e.NonRetryable, e.Cause
		}
		b = appendString(b, 1, err.Error())
		b = appendString(b, 2, source)
		if cause != nil {
			b = appendFailure(b, 4, cause)
		}
		return appendMessage(b, 5, func(b []byte) []byte { // application_failure_info
			b = appendString(b, 1, typ)
			if nonRetryable {
				b = protowire.AppendTag(b, 2, protowire.VarintType)
				b = protowire.AppendVarint(b, 1)
			}
			return b
		})
	})
}

// goErrorType names an error's type as the Go SDK does: the name of the
// type it points to, "" for errors.New's.
func goErrorType(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == "errorString" {
		return ""
	}
	return t.Name()
}

// parseDuration reads a google.protobuf.Duration.
func parseDuration(b []byte) (time.Duration, error) {
	var d time.Duration
	err := fields(b, func(num protowire.Number, _ []byte, n uint64) error {
		switch num {
		case 1:
			d += time.Duration(int64(n)) * time.Second
		case 2:
			d += time.Duration(int32(n))
		}
		return nil
	})
	return d, err
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendMessage appends the message body writes as field num.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body(nil))
}

// fields calls fn with each field of message b, in order: its number and,
// for a length-delimited field, its bytes, or for a varint, its value.
// Fields of other wire types are skipped.
func fields(b []byte, fn func(num protowire.Number, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("malformed message, %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("malformed field %d, %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType && typ != protowire.VarintType {
			continue
		}
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}
