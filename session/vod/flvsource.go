package vod

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// minSharedSpan is the smallest range across blocks read and shared as a
// range of its own (a large tag); a smaller one (a tag header, a small
// tag at a block's end) is copied from the blocks.
const minSharedSpan = blockSize / 4

// flvSource reads the tags of an FLV file through the Store's shared
// blocks (blocks.go): a tag within one block is a slice of it, not a copy;
// one across blocks, or past the version's size (a growing recording), is
// copied into a slice of its own. It checks what flv.Reader checks: the
// tag header's reserved bits, the size bound and each PreviousTagSize.
type flvSource struct {
	store *Store
	real  string
	f     *os.File
	info  *Info // the version read; SeekKeyframe of a recording moves to a newer one

	first int64 // offset of the first tag header
	pos   int64 // offset of the next tag header

	cur    []byte // the block last read, held: the next tags are most likely in it
	curN   int64
	curVer *Info
	tag    flv.Tag // what Next returns
}

func (s *flvSource) Info() *Info { return s.info }

// readHeader reads the file header: where the first tag is.
func (s *flvSource) readHeader() error {
	p, err := s.bytes(0, flv.HeaderSize)
	if err != nil {
		return fmt.Errorf("flv: file header: %w", unexpectedEOF(err))
	}
	if p[0] != 'F' || p[1] != 'L' || p[2] != 'V' {
		return fmt.Errorf("flv: signature %q: %w", p[:3], flv.ErrCorrupt)
	}
	off := binary.BigEndian.Uint32(p[5:])
	if off < flv.HeaderSize {
		return fmt.Errorf("flv: data offset %d: %w", off, flv.ErrCorrupt)
	}
	s.first = int64(off) + flv.PrevSizeSize
	s.pos = s.first
	return nil
}

func (s *flvSource) SeekKeyframe(ms int64) (int64, bool, error) {
	if s.store.IsRecording(s.real) {
		// A growing file: index what is there now (through a handle of
		// its own).
		if f, err := openFile(s.real); err == nil {
			if info, err := s.store.info(s.real, f); err == nil {
				s.info = info
			}
			f.Close()
		}
	}
	idx := s.info.index
	if ms <= 0 {
		return 0, false, s.seekTag(idx.Start)
	}
	k := idx.Lookup(time.Duration(ms) * time.Millisecond)
	if k.Pos <= idx.Start {
		return 0, false, s.seekTag(idx.Start)
	}
	return int64(k.Time*1000 + 0.5), true, s.seekTag(k.Pos)
}

// seekTag makes the next Next read the tag whose header is at offset (0:
// the first), as flv.Reader.SeekTag does.
func (s *flvSource) seekTag(offset int64) error {
	if offset == 0 {
		offset = s.first
	}
	if offset < s.first {
		return fmt.Errorf("flv: seek to %d, before the first tag at %d", offset, s.first)
	}
	if offset > s.info.size {
		fi, err := s.f.Stat()
		if err != nil {
			return fmt.Errorf("flv: %w", err)
		}
		if offset > fi.Size() {
			return fmt.Errorf("flv: seek to %d, beyond the end at %d", offset, fi.Size())
		}
	}
	s.pos = offset
	return nil
}

func (s *flvSource) Next() (*flv.Tag, error) {
	h, err := s.bytes(s.pos, flv.TagHeaderSize)
	if err != nil {
		return nil, err // io.EOF: nothing more; io.ErrUnexpectedEOF: a partial header
	}
	if h[0]&0xe0 != 0 {
		return nil, fmt.Errorf("flv: tag at offset %d: type byte 0x%02x: %w", s.pos, h[0], flv.ErrCorrupt)
	}
	size := uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	if size > flv.DefaultMaxTagSize {
		return nil, fmt.Errorf("flv: tag at offset %d: %d bytes of data, limit %d: %w", s.pos, size, flv.DefaultMaxTagSize, flv.ErrTagTooLarge)
	}
	t := flv.Tag{
		Type:      message.Type(h[0]),
		Timestamp: uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]),
		StreamID:  uint32(h[8])<<16 | uint32(h[9])<<8 | uint32(h[10]),
		Offset:    s.pos,
	}
	n := int(size)
	b, err := s.bytes(s.pos+flv.TagHeaderSize, n+flv.PrevSizeSize)
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if got, want := binary.BigEndian.Uint32(b[n:]), flv.TagHeaderSize+size; got != want {
		return nil, fmt.Errorf("flv: tag at offset %d: PreviousTagSize %d, want %d: %w", s.pos, got, want, flv.ErrCorrupt)
	}
	t.Data = b[:n:n]
	s.pos += int64(flv.TagHeaderSize + n + flv.PrevSizeSize)
	s.tag = t
	return &s.tag, nil
}

// bytes returns n bytes of the file at off, never to be written to: a
// slice of a shared block when they are in one, else a copy. io.EOF when
// the file ends at off, io.ErrUnexpectedEOF when it ends after it.
func (s *flvSource) bytes(off int64, n int) ([]byte, error) {
	end := off + int64(n)
	if n > 0 && end <= s.info.size {
		if bn := off / blockSize; (end-1)/blockSize == bn {
			blk, err := s.block(bn)
			if err != nil {
				return nil, err
			}
			o := off - bn*blockSize
			return blk[o : o+int64(n) : o+int64(n)], nil
		}
		if n >= minSharedSpan {
			b, err := s.store.blocks.getRange(s.info, s.f, off, int64(n))
			if err != nil {
				return nil, err
			}
			return b[:n:n], nil
		}
	}
	out := make([]byte, n)
	p, at := out, off
	for len(p) > 0 && at < s.info.size {
		bn := at / blockSize
		blk, err := s.block(bn)
		if err != nil {
			return nil, err
		}
		c := copy(p, blk[at-bn*blockSize:])
		p, at = p[c:], at+int64(c)
	}
	if len(p) > 0 {
		// Past the version's end: a recording that grew since.
		m, err := s.f.ReadAt(p, at)
		if m < len(p) {
			switch {
			case err != nil && !errors.Is(err, io.EOF):
				return nil, err
			case m == 0 && at == off:
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
	}
	return out, nil
}

// block returns block number n of the version read.
func (s *flvSource) block(n int64) ([]byte, error) {
	if s.cur != nil && s.curN == n && s.curVer == s.info {
		return s.cur, nil
	}
	b, err := s.store.blocks.get(s.info, s.f, n)
	if err != nil {
		return nil, err
	}
	s.cur, s.curN, s.curVer = b, n, s.info
	return b, nil
}

func (s *flvSource) Close() {
	s.cur, s.curVer = nil, nil
	s.f.Close()
}

// unexpectedEOF turns the io.EOF of a read cut short into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
