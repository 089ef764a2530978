package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// flvHead is rtmphub's HTTP-FLV response head (web.hijackFLV).
const flvHead = "HTTP/1.1 200 OK\r\nCache-Control: no-cache, no-store\r\nConnection: close\r\n" +
	"Content-Type: video/x-flv\r\nX-Content-Type-Options: nosniff\r\n\r\n"

// flvJoin is what a viewer gets first: the FLV header, metadata, the
// sequence headers, an inter frame left of a GOP (as after a skip), the
// keyframe and then an audio frame and an inter frame.
func flvJoin(t testing.TB) (stream []byte, afterKey int) {
	t.Helper()
	b := flv.AppendHeader(nil, flv.Header{Version: 1, HasAudio: true, HasVideo: true})
	add := func(typ message.Type, data []byte) {
		var err error
		if b, err = flv.AppendTag(b, &flv.Tag{Type: typ, Timestamp: 40, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	add(message.TypeDataAMF0, []byte("\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"))
	add(message.TypeVideo, []byte{0x17, 0x00, 0, 0, 0, 1, 0x42, 0xc0, 0x0d}) // AVC sequence header
	add(message.TypeAudio, []byte{0xaf, 0x00, 0x12, 0x10})                   // AAC sequence header
	add(message.TypeVideo, []byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41})    // inter
	add(message.TypeVideo, append([]byte{0x17, 0x01, 0, 0, 0, 0, 0, 1, 0}, bytes.Repeat([]byte{0x65}, 300)...))
	afterKey = len(b)
	add(message.TypeAudio, []byte{0xaf, 0x01, 0x21})
	add(message.TypeVideo, []byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41})
	return b, afterKey
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestReadFLVStart(t *testing.T) {
	body, afterKey := flvJoin(t)
	in := append([]byte(flvHead), body...)
	for _, tc := range []struct {
		name string
		r    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"byte by byte", iotest.OneByteReader},
		{"7 bytes a read", func(r io.Reader) io.Reader { return chunkReader{r, 7} }},
		{"tag header split", func(r io.Reader) io.Reader { return chunkReader{r, len(flvHead) + 13 + 5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p player
			// The smallest buffer -read-buf allows, smaller than the keyframe.
			br := bufio.NewReaderSize(tc.r(bytes.NewReader(in)), 16)
			if err := p.readFLVStart(br, time.Now()); err != nil {
				t.Fatal(err)
			}
			if p.ttff <= 0 || p.ttfk < p.ttff {
				t.Errorf("ttff %v, ttfk %v", p.ttff, p.ttfk)
			}
			// It stopped right after the keyframe tag's PreviousTagSize.
			rest, _ := io.ReadAll(br)
			if want := body[afterKey:]; !bytes.Equal(rest, want) {
				t.Errorf("left % x, want % x", rest, want)
			}
		})
	}
}

func TestReadFLVStartEnhanced(t *testing.T) {
	b := flv.AppendHeader(nil, flv.Header{Version: 1, HasVideo: true})
	for _, data := range [][]byte{
		{0x90, 'h', 'v', 'c', '1', 1, 2, 3}, // SequenceStart
		{0xa3, 'h', 'v', 'c', '1', 4, 5},    // inter, CodedFramesX
		{0x93, 'h', 'v', 'c', '1', 6, 7},    // keyframe, CodedFramesX
	} {
		b, _ = flv.AppendTag(b, &flv.Tag{Type: message.TypeVideo, Data: data})
	}
	var p player
	if err := p.readFLVStart(bufio.NewReader(strings.NewReader(flvHead+string(b))), time.Now()); err != nil {
		t.Fatal(err)
	}
	if p.ttfk == 0 {
		t.Error("no keyframe seen")
	}
}

func TestReadFLVStartErrors(t *testing.T) {
	body, afterKey := flvJoin(t)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\n\r\nstream not found\n",
			"HTTP 404 Not Found: stream not found"},
		{"403 without body", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "HTTP 403 Forbidden"},
		{"not flv", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", `Content-Type "text/html", not video/x-flv`},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding"},
		{"not http", "RTMP?", "HTTP response: malformed HTTP response"},
		{"bad signature", flvHead + "FLX\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00", "signature"},
		{"ends in the header", flvHead + "FLV\x01", "FLV header: unexpected EOF"},
		{"no video", flvHead + string(body[:13]), "waiting for the first video tag: unexpected EOF"},
		{"ends before the keyframe", flvHead + string(body[:afterKey-5]), "waiting for the first keyframe: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p player
			err := p.readFLVStart(bufio.NewReader(strings.NewReader(tc.in)), time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// serveOnce answers the first connection to a loopback listener with
// answer after reading the request head, then keeps writing more (when
// not nil) until the player goes; it returns the address and the request
// it got.
func serveOnce(t *testing.T, answer []byte, more []byte) (addr string, req <-chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqc := make(chan *http.Request, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			t.Errorf("request: %v", err)
			return
		}
		reqc <- r
		if _, err := c.Write(answer); err != nil {
			return
		}
		for more != nil {
			if _, err := c.Write(more); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	return ln.Addr().String(), reqc
}

func testPlayerConfig(addr string) *playerConfig {
	return &playerConfig{protocol: protoHTTPFLV, addr: addr, app: "live", name: "bench",
		setupTimeout: 5 * time.Second, readTimeout: 5 * time.Second, readBuf: 4096, rcvLowat: 100}
}

func TestFLVPlayer(t *testing.T) {
	body, _ := flvJoin(t)
	addr, reqc := serveOnce(t, append([]byte(flvHead), body...), body[len(body)-30:])
	cfg := testPlayerConfig(addr)
	var p player
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { p.run(ctx, cfg, func() { close(ready) }); close(done) }()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	if st := p.state.Load(); st != playerStreaming {
		t.Fatalf("state %d, err %v", st, p.err)
	}
	r := <-reqc
	if r.Method != "GET" || r.URL.Path != "/live/bench.flv" || r.Host != addr || r.Proto != "HTTP/1.1" {
		t.Errorf("request %s %s %s, Host %s", r.Method, r.URL, r.Proto, r.Host)
	}
	// It counts what follows, head and all.
	deadline := time.Now().Add(5 * time.Second)
	for p.bytes.Load() < uint64(len(flvHead)+len(body)+300) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.bytes.Load(); n < uint64(len(flvHead)+len(body)+300) {
		t.Errorf("counted %d bytes", n)
	}
	cancel()
	<-done
	if st := p.state.Load(); st != playerStopped {
		t.Errorf("state %d after the stop, err %v", st, p.err)
	}
}

func TestFLVPlayer404(t *testing.T) {
	addr, _ := serveOnce(t, []byte("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"X-Content-Type-Options: nosniff\r\nContent-Length: 17\r\n\r\nstream not found\n"), nil)
	var p player
	readyCalled := false
	p.run(context.Background(), testPlayerConfig(addr), func() { readyCalled = true })
	if st := p.state.Load(); st != playerFailed {
		t.Errorf("state %d", st)
	}
	if p.err == nil || p.err.Error() != "HTTP 404 Not Found: stream not found" {
		t.Errorf("err %v", p.err)
	}
	if !readyCalled {
		t.Error("a failed player was never ready")
	}
	if p.ttff != 0 || p.ttfk != 0 {
		t.Errorf("ttff %v, ttfk %v", p.ttff, p.ttfk)
	}
}

// After the keyframe the server going away is a drop.
func TestFLVPlayerDropped(t *testing.T) {
	body, _ := flvJoin(t)
	addr, _ := serveOnce(t, append([]byte(flvHead), body...), nil)
	var p player
	p.run(context.Background(), testPlayerConfig(addr), func() {})
	if st := p.state.Load(); st != playerDropped {
		t.Errorf("state %d, err %v", st, p.err)
	}
	if p.err == nil || p.err.Error() != "server closed the connection" {
		t.Errorf("err %v", p.err)
	}
}
