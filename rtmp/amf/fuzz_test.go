package amf

import (
	"errors"
	"testing"
)

// fuzzMaxSize keeps fuzz iterations quick. The logical size of a value
// does not depend on its encoding (an AVM+ switch only adds to it), so a
// value that decoded within the limit re-decodes within it.
const fuzzMaxSize = 1 << 16

func decodeAll(b []byte, amf3 bool) ([]any, error) {
	d := NewDecoder(b)
	d.MaxSize = fuzzMaxSize
	var vs []any
	for d.Len() > 0 {
		var v any
		var err error
		if amf3 {
			v, err = d.DecodeAMF3()
		} else {
			v, err = d.DecodeAMF0()
		}
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

func fuzzRoundTrip(t *testing.T, b []byte, amf3 bool) {
	vs, err := decodeAll(b, amf3)
	if err != nil {
		return
	}
	var e Encoder
	for i, v := range vs {
		if amf3 {
			err = e.EncodeAMF3(v)
		} else {
			err = e.EncodeAMF0(v)
		}
		if errors.Is(err, ErrUnencodable) {
			return // e.g. an AMF3 key longer than AMF0 allows
		}
		if err != nil {
			t.Fatalf("re-encoding value %d %#v: %v", i, v, err)
		}
	}
	again, err := decodeAll(e.Bytes(), amf3)
	if err != nil {
		t.Fatalf("decoding the re-encoding % X: %v", e.Bytes(), err)
	}
	// AMF0 turns AMF3 integers behind a switch into numbers.
	if !equalValues(vs, again, !amf3) {
		t.Fatalf("round trip changed the values\nfirst  %#v\nsecond %#v", vs, again)
	}
}

// maxSeed leaves out the big table rows: minimizing a large interesting
// input stalls the fuzzer for a minute.
const maxSeed = 4096

func FuzzDecodeAMF0(f *testing.F) {
	for _, r := range amf0Rows {
		addSeed(f, r.wire)
	}
	for _, r := range amf0ErrRows {
		addSeed(f, r.wire)
	}
	for _, r := range amf3Rows {
		addSeed(f, append([]byte{marker0AVMPlus}, r.wire...))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, false) })
}

func FuzzDecodeAMF3(f *testing.F) {
	for _, r := range amf3Rows {
		addSeed(f, r.wire)
	}
	for _, r := range amf3ErrRows {
		addSeed(f, r.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, true) })
}

func addSeed(f *testing.F, b []byte) {
	if len(b) <= maxSeed {
		f.Add(b)
	}
}
