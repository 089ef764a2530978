package amf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/cases.json from the case tables")

// fixturePath holds the AMF0 and AMF3 case tables as JSON, for codecs in
// other languages (the JavaScript client library's tests read it). The
// tables here are the source; TestCasesFixture fails when the file
// differs from them, and -update rewrites it.
const fixturePath = "testdata/cases.json"

// maxFixtureWire leaves out error rows whose input is too large to be
// worth committing as hex (the reference-expansion rows of megabytes).
const maxFixtureWire = 64 << 10

type fixtureRow struct {
	Name       string `json:"name"`
	Vals       []any  `json:"vals"`
	Wire       string `json:"wire"`
	DecodeOnly bool   `json:"decodeOnly,omitempty"`
	EncodeOnly bool   `json:"encodeOnly,omitempty"`
}

type fixtureErrRow struct {
	Name string `json:"name"`
	Wire string `json:"wire"`
	// Want is "truncated", "depth" or "toolarge" when the row names the
	// error, "" when any error will do.
	Want string `json:"want,omitempty"`
}

type fixture struct {
	Comment    string          `json:"comment"`
	AMF0       []fixtureRow    `json:"amf0"`
	AMF3       []fixtureRow    `json:"amf3"`
	AMF0Errors []fixtureErrRow `json:"amf0Errors"`
	AMF3Errors []fixtureErrRow `json:"amf3Errors"`
}

// fixtureValue is the typed JSON form of a decoded value: {"t": type, ...}.
// Numbers that JSON cannot hold (NaN, ±Infinity, -0) are strings.
func fixtureValue(v any) (any, error) {
	num := func(f float64) any {
		switch {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "Infinity"
		case math.IsInf(f, -1):
			return "-Infinity"
		case f == 0 && math.Signbit(f):
			return "-0"
		}
		return f
	}
	list := func(vs []any) ([]any, error) {
		out := make([]any, 0, len(vs))
		for _, x := range vs {
			j, err := fixtureValue(x)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
		return out, nil
	}
	props := func(ps []Property) ([]any, error) {
		out := make([]any, 0, len(ps))
		for _, p := range ps {
			j, err := fixtureValue(p.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, []any{p.Key, j})
		}
		return out, nil
	}
	type m = map[string]any
	switch x := v.(type) {
	case nil:
		return m{"t": "null"}, nil
	case Undefined:
		return m{"t": "undefined"}, nil
	case Unsupported:
		return m{"t": "unsupported"}, nil
	case float64:
		return m{"t": "number", "v": num(x)}, nil
	case int32:
		return m{"t": "int", "v": x}, nil
	case bool:
		return m{"t": "bool", "v": x}, nil
	case string:
		return m{"t": "string", "v": x}, nil
	case time.Time:
		return m{"t": "date", "ms": x.UnixMilli()}, nil
	case XMLDocument:
		return m{"t": "xmldoc", "v": string(x)}, nil
	case XML:
		return m{"t": "xml", "v": string(x)}, nil
	case ByteArray:
		return m{"t": "bytes", "hex": hex.EncodeToString(x)}, nil
	case []any:
		items, err := list(x)
		return m{"t": "array", "items": items}, err
	case Object:
		ps, err := props(x)
		return m{"t": "object", "props": ps}, err
	case ECMAArray:
		ps, err := props(x)
		return m{"t": "ecma", "props": ps}, err
	case TypedObject:
		ps, err := props(x.Props)
		return m{"t": "typed", "class": x.Class, "props": ps}, err
	case MixedArray:
		dense, err := list(x.Dense)
		if err != nil {
			return nil, err
		}
		ps, err := props(x.Assoc)
		return m{"t": "mixed", "dense": dense, "props": ps}, err
	case VectorInt:
		return m{"t": "vint", "fixed": x.Fixed, "items": x.Items}, nil
	case VectorUint:
		return m{"t": "vuint", "fixed": x.Fixed, "items": x.Items}, nil
	case VectorDouble:
		items := make([]any, len(x.Items))
		for i, f := range x.Items {
			items[i] = num(f)
		}
		return m{"t": "vdouble", "fixed": x.Fixed, "items": items}, nil
	case VectorObject:
		items, err := list(x.Items)
		return m{"t": "vobject", "fixed": x.Fixed, "class": x.Class, "items": items}, err
	case Dictionary:
		entries := make([]any, 0, len(x.Entries))
		for _, e := range x.Entries {
			k, err := fixtureValue(e.Key)
			if err != nil {
				return nil, err
			}
			val, err := fixtureValue(e.Value)
			if err != nil {
				return nil, err
			}
			entries = append(entries, []any{k, val})
		}
		return m{"t": "dict", "weak": x.WeakKeys, "entries": entries}, nil
	}
	return nil, fmt.Errorf("no fixture form for %T", v)
}

func fixtureRows(rows []row) ([]fixtureRow, error) {
	out := make([]fixtureRow, 0, len(rows))
	for _, r := range rows {
		vals, err := fixtureValue(r.vals)
		if err != nil {
			return nil, fmt.Errorf("row %q: %w", r.name, err)
		}
		out = append(out, fixtureRow{
			Name: r.name, Vals: vals.(map[string]any)["items"].([]any), Wire: hex.EncodeToString(r.wire),
			DecodeOnly: r.decodeOnly, EncodeOnly: r.encodeOnly,
		})
	}
	return out, nil
}

func fixtureErrRows(rows []errRow) []fixtureErrRow {
	out := make([]fixtureErrRow, 0, len(rows))
	for _, r := range rows {
		if len(r.wire) > maxFixtureWire {
			continue
		}
		var want string
		switch {
		case r.want == nil:
		case errors.Is(r.want, ErrTruncated):
			want = "truncated"
		case errors.Is(r.want, ErrDepth):
			want = "depth"
		case errors.Is(r.want, ErrTooLarge):
			want = "toolarge"
		default:
			want = r.want.Error()
		}
		out = append(out, fixtureErrRow{Name: r.name, Wire: hex.EncodeToString(r.wire), Want: want})
	}
	return out
}

func buildFixture() ([]byte, error) {
	f := fixture{
		Comment: "Generated from rtmp/amf's case tables (amf0Rows, amf3Rows, amf0ErrRows, amf3ErrRows) by " +
			"`go test ./rtmp/amf -run TestCasesFixture -update`; do not edit. Values: {t: type, ...}, see fixture_test.go.",
		AMF0Errors: fixtureErrRows(amf0ErrRows),
		AMF3Errors: fixtureErrRows(amf3ErrRows),
	}
	var err error
	if f.AMF0, err = fixtureRows(amf0Rows); err != nil {
		return nil, err
	}
	if f.AMF3, err = fixtureRows(amf3Rows); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TestCasesFixture keeps testdata/cases.json equal to the case tables, so
// that a row added or changed here reaches the other codecs' tests.
func TestCasesFixture(t *testing.T) {
	want, err := buildFixture()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(fixturePath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatalf("%v (run go test ./rtmp/amf -run TestCasesFixture -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the case tables: run go test ./rtmp/amf -run TestCasesFixture -update and commit it", fixturePath)
	}
}
