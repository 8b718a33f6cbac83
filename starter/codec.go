package starter

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/msm-project/msm/internal/codec"
)

// PayloadCodec adapts an msm codec to the SDK: every payload a client with
// DataConverter(c) writes is sealed, and sealed ones it reads are opened.
func PayloadCodec(c *codec.Codec) converter.PayloadCodec { return sdkCodec{c} }

// DataConverter is the SDK's default data converter with c's encryption,
// nil without a codec (the SDK's default).
func DataConverter(c *codec.Codec) converter.DataConverter {
	if c == nil {
		return nil
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), PayloadCodec(c))
}

type sdkCodec struct{ c *codec.Codec }

func (s sdkCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		e, err := s.c.Encode(codec.Payload{Metadata: p.GetMetadata(), Data: p.GetData()})
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: e.Metadata, Data: e.Data}
	}
	return out, nil
}

func (s sdkCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		d, err := s.c.Decode(codec.Payload{Metadata: p.GetMetadata(), Data: p.GetData()})
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: d.Metadata, Data: d.Data}
	}
	return out, nil
}
