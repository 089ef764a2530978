package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// FLV framing (Adobe FLV file format, E.4).
const (
	flvHeaderLen    = 9  // signature, version, flags, data offset
	flvTagHeaderLen = 11 // type, data size (3), timestamp (3+1), stream id (3)
	flvPrevSizeLen  = 4  // PreviousTagSize after the header and every tag
	flvTagVideo     = 9
)

// runFLV plays the bench stream as HTTP-FLV: one GET on the server's RTMP
// address (rtmphub tells HTTP from RTMP by the first byte), the response
// head, the FLV header, tags up to the first keyframe, and from then on raw
// bytes counted like an RTMP player's, with nothing to acknowledge.
func (p *player) runFLV(ctx context.Context, cfg *playerConfig, ready func()) error {
	d := net.Dialer{Timeout: cfg.setupTimeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return err
	}
	stopClose := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopClose()
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(cfg.setupTimeout)); err != nil {
		return err
	}
	sent := time.Now()
	if _, err := io.WriteString(conn, flvRequest(cfg)); err != nil {
		return fmt.Errorf("send GET: %w", err)
	}
	// Bytes the reader buffers past the keyframe are counted as it reads
	// them; afterwards the connection is read directly.
	br := bufio.NewReaderSize(countingReader{conn, &p.bytes}, cfg.readBuf)
	if err := p.readFLVStart(br, sent); err != nil {
		return err
	}
	p.streaming(ready)
	if cfg.pool != nil {
		return cfg.pool.count(ctx, conn, &p.bytes, 0, 0)
	}
	return p.count(conn, cfg, nil)
}

// flvPath is the HTTP-FLV path of the bench stream.
func flvPath(cfg *playerConfig) string {
	return "/" + cfg.app + "/" + cfg.name + ".flv"
}

// flvRequest is the player's GET, as a browser's player (mpegts.js) or
// ffmpeg sends it, less their extra headers.
func flvRequest(cfg *playerConfig) string {
	return "GET " + flvPath(cfg) + " HTTP/1.1\r\nHost: " + cfg.addr + "\r\nUser-Agent: rtmpbench\r\nAccept: */*\r\n\r\n"
}

// readFLVStart reads the response head and the stream up to and including
// the first video keyframe tag, noting when the first video tag and the
// first keyframe had arrived, counted from sent.
func (p *player) readFLVStart(br *bufio.Reader, sent time.Time) error {
	if err := readFLVHead(br); err != nil {
		return err
	}
	if err := readFLVHeader(br); err != nil {
		return err
	}
	var h [flvTagHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return p.flvWaitError(err)
		}
		typ := h[0] & 0x1f // bits 5-7: reserved, filter
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		var key bool
		if typ == flvTagVideo {
			first, err := br.Peek(min(size, 2))
			if err != nil {
				return p.flvWaitError(err)
			}
			key = isKeyframe(first)
		}
		if _, err := br.Discard(size + flvPrevSizeLen); err != nil {
			return p.flvWaitError(err)
		}
		if typ != flvTagVideo {
			continue
		}
		if p.ttff == 0 {
			p.ttff = max(time.Since(sent), time.Nanosecond)
		}
		if key {
			p.ttfk = max(time.Since(sent), time.Nanosecond)
			return nil
		}
	}
}

// flvWaitError says what the player was waiting for when err happened.
func (p *player) flvWaitError(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if p.ttff == 0 {
		return fmt.Errorf("waiting for the first video tag: %w", err)
	}
	return fmt.Errorf("waiting for the first keyframe: %w", err)
}

// readFLVHead reads the HTTP response head and wants 200 and video/x-flv;
// another answer becomes an error with its status and the start of its
// body.
func readFLVHead(br *bufio.Reader) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("HTTP response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// An error answer has a length (or ends with the connection);
		// a few hundred bytes of it tell why.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		if msg := strings.TrimSpace(string(b)); msg != "" {
			return fmt.Errorf("HTTP %s: %s", resp.Status, msg)
		}
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	// The body is read from br directly: it has no length and ends with
	// the connection.
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "video/x-flv" {
		return fmt.Errorf("HTTP 200 with Content-Type %q, not video/x-flv", resp.Header.Get("Content-Type"))
	}
	if te := resp.TransferEncoding; len(te) > 0 {
		return fmt.Errorf("HTTP-FLV body with Transfer-Encoding %q: the player reads raw FLV", te)
	}
	return nil
}

// readFLVHeader reads the FLV file header and the PreviousTagSize0 after
// it.
func readFLVHeader(br *bufio.Reader) error {
	var h [flvHeaderLen]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return fmt.Errorf("FLV header: %w", err)
	}
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return fmt.Errorf("FLV header: signature % x, not FLV", h[:3])
	}
	off := binary.BigEndian.Uint32(h[5:])
	if off < flvHeaderLen || off > 1<<16 {
		return fmt.Errorf("FLV header: data offset %d", off)
	}
	if _, err := br.Discard(int(off) - flvHeaderLen + flvPrevSizeLen); err != nil {
		return fmt.Errorf("FLV header: %w", err)
	}
	return nil
}
