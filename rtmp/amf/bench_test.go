package amf

import "testing"

func connectValues() []any {
	return vals("connect", 1.0, Object{
		{"app", "live"},
		{"flashVer", "LNX 9,0,124,2"},
		{"tcUrl", "rtmp://localhost:1935/live"},
		{"fpad", false},
		{"capabilities", 15.0},
		{"audioCodecs", 4071.0},
		{"videoCodecs", 252.0},
		{"videoFunction", 1.0},
	})
}

func metaDataValues() []any { return vals("@setDataFrame", "onMetaData", metaData) }

func benchEncode0(b *testing.B, vs []any) {
	var e Encoder
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		for _, v := range vs {
			if err := e.EncodeAMF0(v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(int64(e.Len()))
}

func benchDecode0(b *testing.B, vs []any) {
	wire, err := Marshal0(vs...)
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(nil)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(wire)
		for d.Len() > 0 {
			if _, err := d.DecodeAMF0(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEncodeAMF0Connect(b *testing.B)  { benchEncode0(b, connectValues()) }
func BenchmarkDecodeAMF0Connect(b *testing.B)  { benchDecode0(b, connectValues()) }
func BenchmarkEncodeAMF0MetaData(b *testing.B) { benchEncode0(b, metaDataValues()) }
func BenchmarkDecodeAMF0MetaData(b *testing.B) { benchDecode0(b, metaDataValues()) }

// An AMF3 shared object style value: typed objects sharing traits and
// strings.
func amf3Value() any {
	users := make([]any, 10)
	for i := range users {
		users[i] = TypedObject{Class: "User", Props: Object{{"name", "ann"}, {"age", int32(30 + i)}, {"online", true}}}
	}
	return Object{{"room", "lobby"}, {"users", users}, {"topic", "hello"}}
}

func BenchmarkEncodeAMF3Object(b *testing.B) {
	v := amf3Value()
	var e Encoder
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		if err := e.EncodeAMF3(v); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(e.Len()))
}

func BenchmarkDecodeAMF3Object(b *testing.B) {
	wire, err := Marshal3(amf3Value())
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(nil)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(wire)
		if _, err := d.DecodeAMF3(); err != nil {
			b.Fatal(err)
		}
	}
}
