package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An echo session over the dialer, served directly and by the HTTP server.
func TestDirectServingCarriesASession(t *testing.T) {
	for _, noDirect := range []bool{false, true} {
		t.Run("nodirect="+strconv.FormatBool(noDirect), func(t *testing.T) {
			addr, s := testServer(t, Config{NoDirect: noDirect}, echo)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := DialRTMPT(ctx, "rtmpt://"+addr, DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			for i := range 50 {
				msg := bytes.Repeat([]byte{byte(i)}, 1+i*997)
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(i, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo %d differs", i)
				}
			}
			direct := s.Stats().DirectConns
			if noDirect && direct != 0 || !noDirect && direct == 0 {
				t.Fatalf("%d connections served directly (NoDirect %v)", direct, noDirect)
			}
		})
	}
}

// streamer writes a numbered 100-byte block every 10 ms, as a publisher's
// fan-out writes frames.
func streamer(ctx context.Context, nc net.Conn, _ Info) {
	defer nc.Close()
	go io.Copy(io.Discard, nc)
	block := make([]byte, 100)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
		for j := range block {
			block[j] = byte(i)
		}
		if _, err := nc.Write(block); err != nil {
			return
		}
	}
}

// While a session streams, its polls are read and answered by the
// goroutine that writes the bytes; the stream arrives whole and in order
// either way.
func TestDirectWriterAnswersPolls(t *testing.T) {
	for _, noDirect := range []bool{false, true} {
		t.Run("nodirect="+strconv.FormatBool(noDirect), func(t *testing.T) {
			addr, s := testServer(t, Config{NoDirect: noDirect}, streamer)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			io.WriteString(nc, post("/open/1", "\x00"))
			sid := strings.TrimSpace(string(readReplies(t, br, 1)[0].body))
			var got []byte
			for seq := 0; len(got) < 100*60; seq++ {
				io.WriteString(nc, post("/idle/"+sid+"/"+strconv.Itoa(seq), "\x00"))
				r := readReplies(t, br, 1)[0]
				if r.status() != 200 {
					t.Fatalf("poll %d: status %d", seq, r.status())
				}
				got = append(got, r.body[1:]...)
			}
			for i := 0; i+100 <= len(got); i += 100 {
				if !bytes.Equal(got[i:i+100], bytes.Repeat([]byte{byte(i / 100)}, 100)) {
					t.Fatalf("block %d differs or is out of order", i/100)
				}
			}
			polls := s.Stats().WriterPolls
			if noDirect && polls != 0 || !noDirect && polls < 10 {
				t.Fatalf("%d polls answered by the writer (NoDirect %v)", polls, noDirect)
			}
		})
	}
}

func readReplies(t *testing.T, br *bufio.Reader, n int) []rawResponse {
	t.Helper()
	var out []rawResponse
	for range n {
		r, err := readRawResponse(br)
		if err != nil {
			t.Fatalf("reply %d: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

func post(path, body string, extra ...string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-fcs\r\n" + strings.Join(extra, "") +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Pipelined requests on a directly served connection are answered in
// order: a parked poll before a later request, whatever that request is.
func TestDirectPipeliningKeepsOrder(t *testing.T) {
	addr, _ := testServer(t, Config{HoldTime: 2 * time.Second}, echo)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	io.WriteString(nc, post("/open/1", "\x00"))
	sid := strings.TrimSpace(string(readReplies(t, br, 1)[0].body))
	if len(sid) != sidLen {
		t.Fatalf("open: %q", sid)
	}
	// A poll with nothing to send (parked), then an unknown session's
	// poll, a bad method and a send: four replies, in order.
	io.WriteString(nc, post("/idle/"+sid+"/0", "\x00")+
		post("/idle/AAAAAAAAAAAAAAAA/0", "\x00")+
		"GET /idle/"+sid+"/1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		post("/send/"+sid+"/1", "ping"))
	rs := readReplies(t, br, 4)
	want := []int{200, 404, 405, 200}
	for i, r := range rs {
		if r.status() != want[i] {
			t.Fatalf("reply %d: status %d, want %d", i, r.status(), want[i])
		}
	}
	if len(rs[0].body) != 1 {
		t.Fatalf("the parked poll carried %q, want only the interval byte", rs[0].body)
	}
	if a, ok := rs[2].header("Allow"); !ok || a != "POST" {
		t.Fatalf("405 without Allow: POST")
	}
	got := string(rs[3].body[1:])
	if got != "ping" {
		io.WriteString(nc, post("/idle/"+sid+"/2", "\x00"))
		got += string(readReplies(t, br, 1)[0].body[1:])
	}
	if got != "ping" {
		t.Fatalf("echo %q", got)
	}
	for _, r := range rs {
		if v, _ := r.header("Connection"); v != "Keep-Alive" {
			t.Fatalf("Connection: %q", v)
		}
		if v, _ := r.header("Content-Type"); v != contentTypeFCS {
			t.Fatalf("Content-Type: %q", v)
		}
	}
}

// Bad requests on a directly served connection: an answer, then a clean
// close.
func TestDirectBadRequests(t *testing.T) {
	addr, _ := testServer(t, Config{MaxBodySize: 1000}, echo)
	cases := []struct {
		req    string
		status int
	}{
		{post("/idle/x/0", "\x00", "Transfer-Encoding: chunked\r\n"), 411},
		{"POST /idle/x/0 HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413},
		{"POST /idle/x/0 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"POST /idle/x/0 HTTP/2.0\r\n\r\n", 400},
		{"POST /idle/x/0 HTTP/1.1\r\n folded\r\n\r\n", 400},
		{"POST " + strings.Repeat("a", 5000) + " HTTP/1.1\r\n\r\n", 414},
		{"POST /x HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", 431},
	}
	for i, tc := range cases {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(nc)
		io.WriteString(nc, post("/open/1", "\x00"))
		readReplies(t, br, 1)
		io.WriteString(nc, tc.req)
		r := readReplies(t, br, 1)[0]
		if r.status() != tc.status {
			t.Errorf("case %d: status %d, want %d", i, r.status(), tc.status)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("case %d: connection not closed after the reply: %v", i, err)
		}
		nc.Close()
	}
}

// While a session streams, its bytes wait up to ReplyMerge for more, so a
// reply carries several writes; bytes written just before the stream
// pauses still go out, within the hand timer's handBackWait.
func TestDirectReplyMerge(t *testing.T) {
	for _, merge := range []time.Duration{-1, 50 * time.Millisecond} {
		t.Run("merge="+merge.String(), func(t *testing.T) {
			const blocks = 80
			lastWrite := make(chan time.Time, 1)
			addr, _ := testServer(t, Config{ReplyMerge: merge}, func(ctx context.Context, nc net.Conn, _ Info) {
				defer nc.Close()
				go io.Copy(io.Discard, nc)
				block := make([]byte, 100)
				for i := range blocks {
					time.Sleep(10 * time.Millisecond)
					if _, err := nc.Write(block); err != nil {
						return
					}
					if i == blocks-1 {
						lastWrite <- time.Now()
					}
				}
				<-ctx.Done()
			})
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			io.WriteString(nc, post("/open/1", "\x00"))
			sid := strings.TrimSpace(string(readReplies(t, br, 1)[0].body))
			got, withData, late := 0, 0, 0
			for seq := 0; got < blocks*100; seq++ {
				io.WriteString(nc, post("/idle/"+sid+"/"+strconv.Itoa(seq), "\x00"))
				r := readReplies(t, br, 1)[0]
				if r.status() != 200 {
					t.Fatalf("poll %d: status %d", seq, r.status())
				}
				if n := len(r.body) - 1; n > 0 {
					got += n
					withData++
					if got > blocks*100/2 && n/100 >= 3 {
						late++ // a merged reply, once the session streams
					}
				}
			}
			arrived := time.Now()
			if wait := arrived.Sub(<-lastWrite); wait > handBackWait+250*time.Millisecond {
				t.Errorf("the last block arrived %v after it was written", wait)
			}
			if merge > 0 && late == 0 {
				t.Errorf("%d replies carried %d blocks, none of the later ones three or more", withData, blocks)
			}
			if merge < 0 && late > 2 {
				t.Errorf("without merging, %d replies carried three blocks or more", late)
			}
			t.Logf("%d blocks in %d replies with data", blocks, withData)
		})
	}
}
