package flv

import (
	"bytes"
	"testing"
	"time"
)

// FuzzIndexBinary decodes index cache files (Index.UnmarshalBinary): it
// never panics, allocates only for the keyframes the input holds, and an
// accepted input is exactly what MarshalBinary writes for the result.
// Seeds are indexes of the fuzzSeeds files and their damaged forms.
func FuzzIndexBinary(f *testing.F) {
	empty, _ := (&Index{}).MarshalBinary()
	f.Add(empty)
	f.Add(empty[:indexHead-1])
	for _, c := range fileCases {
		idx, _ := BuildIndex(bytes.NewReader(c.file))
		if idx == nil {
			continue
		}
		b, err := idx.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if len(b) > indexHead {
			f.Add(b[:len(b)-1])
			f.Add(append(bytes.Clone(b), 0))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var idx Index
		if err := idx.UnmarshalBinary(b); err != nil {
			return
		}
		if len(idx.Keyframes)*16+indexHead != len(b) {
			t.Fatalf("%d keyframes from %d bytes", len(idx.Keyframes), len(b))
		}
		again, err := idx.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoded % x, %v; want % x", again, err, b)
		}
		for _, d := range []time.Duration{-time.Second, 0, time.Second, time.Hour, 1 << 62} {
			idx.Lookup(d)
		}
	})
}
