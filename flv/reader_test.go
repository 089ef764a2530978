package flv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// readAll reads every tag of file; err is what reading ended with (nil for
// io.EOF).
func readAll(file []byte, maxTagSize uint32) (Header, []Tag, error) {
	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		return Header{}, nil, err
	}
	r.MaxTagSize = maxTagSize
	var ts []Tag
	for {
		t, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), ts, nil
		}
		if err != nil {
			return r.Header(), ts, err
		}
		ts = append(ts, *t)
	}
}

func TestDecode(t *testing.T) {
	for _, c := range fileCases {
		t.Run(c.name, func(t *testing.T) {
			hdr, got, err := readAll(c.file, c.maxTagSize)
			if c.newErr != nil {
				if !errors.Is(err, c.newErr) {
					t.Fatalf("NewReader: %v, want %v", err, c.newErr)
				}
				return
			}
			if hdr != c.hdr {
				t.Errorf("header %+v, want %+v", hdr, c.hdr)
			}
			if !reflect.DeepEqual(got, c.tags) && !(len(got) == 0 && len(c.tags) == 0) {
				t.Errorf("tags\n got  %+v\n want %+v", got, c.tags)
			}
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Errorf("ended with %v, want %v", err, c.err)
			}
			// Errors that are not cuts name the offset of the tag.
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTagTooLarge) {
				off := int64(13)
				if n := len(c.tags); n > 0 {
					off = c.tags[n-1].Offset + int64(15+len(c.tags[n-1].Data))
				}
				if want := "offset " + itoa(off); !bytes.Contains([]byte(err.Error()), []byte(want)) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestEncode(t *testing.T) {
	for _, c := range fileCases {
		if c.newErr != nil || c.decodeOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := AppendHeader(nil, c.hdr)
			for i := range c.tags {
				var err error
				if b, err = AppendTag(b, &c.tags[i]); err != nil {
					t.Fatal(err)
				}
			}
			// What was read re-encodes to the bytes it came from, up to
			// where reading stopped.
			want := c.file[:len(b)]
			if !bytes.Equal(b, want) {
				t.Errorf("encoded\n % x\nwant\n % x", b, want)
			}
			if c.err == nil && len(b) != len(c.file) {
				t.Errorf("encoded %d bytes of %d", len(b), len(c.file))
			}
		})
	}
}

func TestAppendTagLimits(t *testing.T) {
	if _, err := AppendTag(nil, &Tag{Type: 0x20}); err == nil {
		t.Error("type 0x20 accepted")
	}
	if _, err := AppendTag(nil, &Tag{Type: TagAudio, StreamID: 1 << 24}); err == nil {
		t.Error("stream id 1<<24 accepted")
	}
	if _, err := AppendTag(nil, &Tag{Type: TagAudio, Data: make([]byte, MaxDataSize+1)}); err == nil {
		t.Error("data over MaxDataSize accepted")
	}
}

// A file cut at any byte reads up to its last complete tag, then
// io.ErrUnexpectedEOF (io.EOF when the cut falls between tags).
func TestCutEverywhere(t *testing.T) {
	c := fileCases[2]          // metadata, AVC and AAC
	ends := map[int]int{13: 0} // file length at a tag boundary -> tags before
	for i, tg := range c.tags {
		ends[int(tg.Offset)+15+len(tg.Data)] = i + 1
	}
	complete := 0
	for n := 13; n <= len(c.file); n++ {
		if k, ok := ends[n]; ok {
			complete = k
		}
		_, got, err := readAll(c.file[:n], 0)
		if len(got) != complete {
			t.Fatalf("cut at %d: %d tags, want %d", n, len(got), complete)
		}
		_, boundary := ends[n]
		if boundary && err != nil || !boundary && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: ended with %v (boundary %v)", n, err, boundary)
		}
	}
}

// A Reader that hit the end retries the same tag, so it follows a file
// that is still being written.
func TestFollowGrowingFile(t *testing.T) {
	c := fileCases[2]
	path := filepath.Join(t.TempDir(), "grow.flv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written in pieces that cut tags anywhere.
	written := 0
	write := func(n int) {
		if _, err := f.Write(c.file[written : written+n]); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	write(13)
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r, err := NewReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	var got []Tag
	for written < len(c.file) {
		write(min(7, len(c.file)-written))
		for {
			tg, err := r.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, *tg)
		}
	}
	if !reflect.DeepEqual(got, c.tags) {
		t.Errorf("followed\n %+v\nwant\n %+v", got, c.tags)
	}
}

func TestSeekTagAndReadTag(t *testing.T) {
	c := fileCases[2]
	r, err := NewReader(bytes.NewReader(c.file))
	if err != nil {
		t.Fatal(err)
	}
	// Backwards, each tag read again from its offset, into one Tag.
	var tg Tag
	for i := len(c.tags) - 1; i >= 0; i-- {
		if err := r.SeekTag(c.tags[i].Offset); err != nil {
			t.Fatal(err)
		}
		if err := r.ReadTag(&tg); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tg, c.tags[i]) {
			t.Errorf("tag %d: %+v, want %+v", i, tg, c.tags[i])
		}
		if want := c.tags[i].Offset + int64(15+len(c.tags[i].Data)); r.Pos() != want {
			t.Errorf("Pos %d after tag %d, want %d", r.Pos(), i, want)
		}
	}
	if err := r.SeekTag(0); err != nil || r.Pos() != 13 {
		t.Errorf("SeekTag(0): %v, at %d", err, r.Pos())
	}
	if err := r.SeekTag(5); err == nil {
		t.Error("seek into the header accepted")
	}
	if err := r.SeekTag(int64(len(c.file)) + 1); err == nil {
		t.Error("seek beyond the end accepted")
	}
	// Into the middle of a tag: the PreviousTagSize check fails.
	if err := r.SeekTag(c.tags[1].Offset + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil {
		t.Error("read a tag from the middle of one")
	}
	// And the Reader recovers with a seek.
	if err := r.SeekTag(c.tags[1].Offset); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Next(); err != nil || !reflect.DeepEqual(*got, c.tags[1]) {
		t.Errorf("after recovery: %+v, %v", got, err)
	}
}

func TestReadTagAllocations(t *testing.T) {
	c := fileCases[2]
	br := bytes.NewReader(c.file)
	r, err := NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	tg := Tag{Data: make([]byte, 0, 64)}
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.SeekTag(0); err != nil {
			t.Fatal(err)
		}
		for {
			if err := r.ReadTag(&tg); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations reading a file into one Tag", allocs)
	}
}
