package flv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Buffer sizes of a Reader: large for reading whole tags, small for
// scanning headers, where most of the data is skipped with a seek.
const (
	readBufferSize = 64 << 10
	scanBufferSize = 4 << 10
)

// Reader reads tags one after the other from an FLV file. It owns the
// offset of the io.ReadSeeker it was given: anything else that moves it
// must be followed by a SeekTag before the next Next.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	// MaxTagSize overrides DefaultMaxTagSize when positive. A tag with a
	// larger DataSize is an error wrapping ErrTagTooLarge.
	MaxTagSize uint32

	rs      io.ReadSeeker
	br      *bufio.Reader
	bufSize int // the largest buffer br may have
	hdr     Header
	first   int64 // offset of the first tag header
	pos     int64 // offset of the next tag header
	size    int64 // file size, as last seen
	synced  bool  // br reads from pos
	scratch [TagHeaderSize + PrevSizeSize]byte
}

// NewReader reads the file header from the start of r and returns a Reader
// positioned at the first tag. A file too short to hold its header is
// io.ErrUnexpectedEOF; one that does not start with "FLV" is ErrCorrupt.
func NewReader(r io.ReadSeeker) (*Reader, error) {
	return newReader(r, readBufferSize)
}

func newReader(rs io.ReadSeeker, bufSize int) (*Reader, error) {
	r := &Reader{rs: rs, bufSize: bufSize}
	if err := r.refreshSize(); err != nil {
		return nil, err
	}
	// The buffer never needs to be larger than the file: hostile headers
	// cost no more memory than the bytes they come in.
	r.br = bufio.NewReaderSize(rs, int(min(max(r.size, 16), int64(bufSize))))
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("flv: %w", err)
	}
	r.br.Reset(rs)
	var p [HeaderSize]byte
	if _, err := io.ReadFull(r.br, p[:]); err != nil {
		return nil, fmt.Errorf("flv: file header: %w", unexpected(err))
	}
	if p[0] != 'F' || p[1] != 'L' || p[2] != 'V' {
		return nil, fmt.Errorf("flv: signature %q: %w", p[:3], ErrCorrupt)
	}
	r.hdr = Header{
		Version:    p[3],
		HasAudio:   p[4]&flagAudio != 0,
		HasVideo:   p[4]&flagVideo != 0,
		DataOffset: binary.BigEndian.Uint32(p[5:]),
	}
	if r.hdr.DataOffset < HeaderSize {
		return nil, fmt.Errorf("flv: data offset %d: %w", r.hdr.DataOffset, ErrCorrupt)
	}
	// PreviousTagSize0 follows the header; its value means nothing.
	r.first = int64(r.hdr.DataOffset) + PrevSizeSize
	if r.first > r.size {
		return nil, fmt.Errorf("flv: file header: %w", io.ErrUnexpectedEOF)
	}
	r.pos = r.first
	return r, nil
}

// Header returns the file header.
func (r *Reader) Header() Header { return r.hdr }

// Pos returns the offset of the tag the next Next reads.
func (r *Reader) Pos() int64 { return r.pos }

// SeekTag makes the next Next read the tag whose header is at offset, a
// Tag.Offset or Keyframe.Pos. Only the range is checked here; bytes that
// are not a tag header make Next fail (its PreviousTagSize check will not
// match), and offset 0 goes to the first tag.
func (r *Reader) SeekTag(offset int64) error {
	if offset == 0 {
		offset = r.first
	}
	if offset < r.first {
		return fmt.Errorf("flv: seek to %d, before the first tag at %d", offset, r.first)
	}
	if offset > r.size {
		if err := r.refreshSize(); err != nil {
			return err
		}
		if offset > r.size {
			return fmt.Errorf("flv: seek to %d, beyond the end at %d", offset, r.size)
		}
	}
	if offset != r.pos {
		r.pos, r.synced = offset, false
	}
	return nil
}

// Next reads the next tag. Its Data is newly allocated and belongs to the
// caller. See ReadTag for the errors.
func (r *Reader) Next() (*Tag, error) {
	t := new(Tag)
	if err := r.ReadTag(t); err != nil {
		return nil, err
	}
	return t, nil
}

// ReadTag reads the next tag into t, reusing the capacity of t.Data (which
// must then not be in use elsewhere).
//
// It returns io.EOF at the end of the file, and io.ErrUnexpectedEOF when
// the file ends inside the next tag (header, data or PreviousTagSize): the
// tail of a recording that was cut short. A PreviousTagSize that does not
// match its tag, and a malformed tag header, are errors wrapping ErrCorrupt
// with the tag's offset. After any error the Reader stays at the same tag:
// calling ReadTag again retries it, which follows a file still being
// written. After an error t.Data's length is unspecified.
func (r *Reader) ReadTag(t *Tag) error {
	h, err := r.header()
	if err != nil {
		return err
	}
	n := int(h.size)
	if cap(t.Data) >= n {
		t.Data = t.Data[:n]
	} else {
		t.Data = make([]byte, n)
	}
	if _, err := io.ReadFull(r.br, t.Data); err != nil {
		return r.fail(unexpected(err))
	}
	if err := r.trailer(h); err != nil {
		return err
	}
	t.Type, t.Timestamp, t.StreamID, t.Offset = h.typ, h.ts, h.streamID, r.pos
	r.pos += int64(TagHeaderSize + n + PrevSizeSize)
	return nil
}

// header reads and checks the header of the tag at r.pos and makes sure
// the whole tag is in the file, without allocating.
func (r *Reader) header() (tagHeader, error) {
	if err := r.sync(); err != nil {
		return tagHeader{}, err
	}
	if r.pos+TagHeaderSize > r.size {
		if err := r.refreshSize(); err != nil {
			return tagHeader{}, err
		}
		if r.pos >= r.size {
			return tagHeader{}, io.EOF
		}
		if r.pos+TagHeaderSize > r.size {
			return tagHeader{}, io.ErrUnexpectedEOF
		}
		if err := r.sync(); err != nil {
			return tagHeader{}, err
		}
	}
	p := r.scratch[:TagHeaderSize]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return tagHeader{}, r.fail(unexpected(err))
	}
	h, err := parseTagHeader(p)
	if err != nil {
		return tagHeader{}, r.fail(fmt.Errorf("flv: tag at offset %d: %w", r.pos, err))
	}
	maxSize := r.MaxTagSize
	if maxSize == 0 {
		maxSize = DefaultMaxTagSize
	}
	if h.size > maxSize {
		return tagHeader{}, r.fail(fmt.Errorf("flv: tag at offset %d: %d bytes of data, limit %d: %w", r.pos, h.size, maxSize, ErrTagTooLarge))
	}
	if end := r.pos + TagHeaderSize + int64(h.size) + PrevSizeSize; end > r.size {
		r.synced = false // refreshSize moves the offset
		if err := r.refreshSize(); err != nil {
			return tagHeader{}, err
		}
		if end > r.size {
			return tagHeader{}, io.ErrUnexpectedEOF
		}
		if err := r.sync(); err != nil {
			return tagHeader{}, err
		}
		if _, err := r.br.Discard(TagHeaderSize); err != nil {
			return tagHeader{}, r.fail(unexpected(err))
		}
	}
	return h, nil
}

// trailer reads and checks the PreviousTagSize after the data of h.
func (r *Reader) trailer(h tagHeader) error {
	p := r.scratch[:PrevSizeSize]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return r.fail(unexpected(err))
	}
	if got, want := binary.BigEndian.Uint32(p), TagHeaderSize+h.size; got != want {
		return r.fail(fmt.Errorf("flv: tag at offset %d: PreviousTagSize %d, want %d: %w", r.pos, got, want, ErrCorrupt))
	}
	return nil
}

// skipData moves past n bytes of tag data: within the buffer when they are
// there, otherwise by seeking (lazily, at the next read).
func (r *Reader) skipData(n int) error {
	if n <= r.br.Buffered() {
		_, err := r.br.Discard(n)
		return err
	}
	// header made sure the tag is in the file: read its trailer there.
	if _, err := r.rs.Seek(r.pos+TagHeaderSize+int64(n), io.SeekStart); err != nil {
		return r.fail(fmt.Errorf("flv: %w", err))
	}
	r.br.Reset(r.rs)
	return nil
}

// fail marks the buffer as out of step with r.pos, so that the next call
// starts again from the tag header, and returns err.
func (r *Reader) fail(err error) error {
	r.synced = false
	return err
}

func (r *Reader) sync() error {
	if r.synced {
		return nil
	}
	if _, err := r.rs.Seek(r.pos, io.SeekStart); err != nil {
		return fmt.Errorf("flv: %w", err)
	}
	r.br.Reset(r.rs)
	r.synced = true
	return nil
}

// refreshSize finds the file size; it moves the offset of r.rs. A file
// that has grown past a buffer sized for it when it was small gets a
// larger buffer.
func (r *Reader) refreshSize() error {
	size, err := r.rs.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("flv: %w", err)
	}
	r.size, r.synced = size, false
	if r.br != nil && r.br.Size() < r.bufSize && size > int64(r.br.Size()) {
		r.br = bufio.NewReaderSize(r.rs, int(min(size, int64(r.bufSize))))
	}
	return nil
}

// unexpected turns the io.EOF of a read cut short into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
