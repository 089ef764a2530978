package sharedobject

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// soFile encodes a persistent shared object file with the store's own
// writer (snapshotLocked).
func soFile(tb testing.TB, version uint32, props map[string]soValue) []byte {
	tb.Helper()
	so := &Object{version: version, props: props}
	for k, v := range props {
		so.size += len(k) + len(v.raw)
	}
	return so.snapshotLocked()
}

// soSlot is a slot as a client's change makes it: the value and its
// encoding.
func soSlot(tb testing.TB, v any, amf3 bool) soValue {
	tb.Helper()
	raw, err := encodeSOValue(v, amf3)
	if err != nil {
		tb.Fatalf("encoding %#v: %v", v, err)
	}
	return soValue{v: v, raw: raw, amf3: amf3}
}

// fsoSeeds are files of empty, AMF0, AMF3 and mixed objects, nested
// values included.
func fsoSeeds(tb testing.TB) [][]byte {
	nested := amf.Object{
		{Key: "name", Value: "ann"},
		{Key: "score", Value: 12.5},
		{Key: "tags", Value: []any{"a", "b", nil, true}},
		{Key: "inner", Value: amf.Object{{Key: "deep", Value: amf.Object{{Key: "x", Value: -1.0}}}}},
	}
	amf0 := map[string]soValue{
		"n":      soSlot(tb, 1.5, false),
		"s":      soSlot(tb, "str", false),
		"b":      soSlot(tb, false, false),
		"null":   soSlot(tb, nil, false),
		"undef":  soSlot(tb, amf.Undefined{}, false),
		"obj":    soSlot(tb, nested, false),
		"ecma":   soSlot(tb, amf.ECMAArray{{Key: "0", Value: 1.0}, {Key: "k", Value: "v"}}, false),
		"typed":  soSlot(tb, amf.TypedObject{Class: "com.x.Player", Props: amf.Object{{Key: "id", Value: 7.0}}}, false),
		"date":   soSlot(tb, time.UnixMilli(1700000000123).UTC(), false),
		"xmldoc": soSlot(tb, amf.XMLDocument("<a/>"), false),
		"avm+":   soSlot(tb, amf.AVMPlus{Value: amf.VectorDouble{Items: []float64{1, 2}}}, false),
	}
	amf3 := map[string]soValue{
		"int":   soSlot(tb, int32(5), true),
		"big":   soSlot(tb, math.MaxFloat64, true),
		"str":   soSlot(tb, "héllo", true),
		"bytes": soSlot(tb, amf.ByteArray{9, 8, 7}, true),
		"vec":   soSlot(tb, amf.VectorInt{Items: []int32{-1, 2}}, true),
		"vecu":  soSlot(tb, amf.VectorUint{Fixed: true, Items: []uint32{1}}, true),
		"vobj":  soSlot(tb, amf.VectorObject{Class: "*", Items: []any{nested, "x"}}, true),
		"obj":   soSlot(tb, nested, true),
		"mixed": soSlot(tb, amf.MixedArray{Dense: []any{1.0, int32(2)}, Assoc: amf.Object{{Key: "k", Value: "v"}}}, true),
		"dict":  soSlot(tb, amf.Dictionary{Entries: []amf.DictEntry{{Key: "a", Value: int32(1)}, {Key: 2.0, Value: nested}}}, true),
		"xml":   soSlot(tb, amf.XML("<x/>"), true),
		"":      soSlot(tb, nil, true),
	}
	mixed := map[string]soValue{"a0": amf0["obj"], "a3": amf3["obj"], "v": amf3["vec"]}
	return [][]byte{
		soFile(tb, 0, map[string]soValue{}),
		soFile(tb, 1, map[string]soValue{"only": soSlot(tb, 1.0, false)}),
		soFile(tb, 42, amf0),
		soFile(tb, 0xFFFFFFFF, amf3),
		soFile(tb, 7, mixed),
	}
}

// FuzzFSO decodes .fso files (decodeSOFile, what load reads): it never
// panics, fails only with errSOFile, allocates in proportion to the file
// whatever its counts and lengths claim, and what it decodes the writer
// encodes to a file that decodes the same. Mutated files rarely carry a
// right checksum, so each input is also decoded with its last 4 bytes
// set to the checksum of the others.
func FuzzFSO(f *testing.F) {
	for _, b := range fsoSeeds(f) {
		if _, _, err := decodeSOFile(b); err != nil {
			f.Fatalf("a seed does not decode: %v", err)
		}
		f.Add(b)
		// And a truncation and a damaged slot count and length field.
		f.Add(b[:len(b)/2])
		if len(b) > len(soFileMagic)+16 {
			d := bytes.Clone(b[:len(b)-4])
			d[len(soFileMagic)+7] ^= 0x7F // slot count (its low byte)
			f.Add(withCRC(d))
			d = bytes.Clone(b[:len(b)-4])
			d[len(soFileMagic)+9] ^= 0x40 // first key's length (low byte)
			f.Add(withCRC(d))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFSO(t, b)
		if len(b) >= 4 {
			checkFSO(t, withCRC(b[:len(b)-4]))
		}
	})
}

func checkFSO(t *testing.T, b []byte) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	ver, props, err := decodeSOFile(b)
	runtime.ReadMemStats(&ms)
	// The AMF decoder bounds a value's decoded size by its encoded one;
	// a slot's Go form (map entry, string headers, interfaces) is a
	// few hundred bytes at most.
	if alloc := ms.TotalAlloc - before; alloc > 1<<20+256*uint64(len(b)) {
		t.Fatalf("decoding %d bytes allocated %d", len(b), alloc)
	}
	if err != nil {
		if props != nil || !errors.Is(err, errSOFile) {
			t.Fatalf("props %v, error %v", props, err)
		}
		return
	}
	enc := soFile(t, ver, props)
	ver2, props2, err := decodeSOFile(enc)
	if err != nil {
		t.Fatalf("re-encoded file does not decode: %v", err)
	}
	if ver2 != ver || len(props2) != len(props) {
		t.Fatalf("version %d, %d slots; re-decoded version %d, %d slots", ver, len(props), ver2, len(props2))
	}
	for k, v := range props {
		v2, ok := props2[k]
		if !ok || v2.amf3 != v.amf3 || !bytes.Equal(v2.raw, v.raw) || fmt.Sprintf("%#v", v2.v) != fmt.Sprintf("%#v", v.v) {
			t.Fatalf("slot %q: %#v, re-decoded %#v", k, v, v2)
		}
	}
	if again := soFile(t, ver2, props2); !bytes.Equal(again, enc) {
		t.Fatal("a decoded file re-encodes differently")
	}
}

// withCRC appends body's checksum: a file the checksum does not refuse.
func withCRC(body []byte) []byte {
	return binary.BigEndian.AppendUint32(body[:len(body):len(body)], crc32.ChecksumIEEE(body))
}
