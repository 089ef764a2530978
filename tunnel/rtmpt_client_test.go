package tunnel

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A closing reply (interval 0) that overtakes the reply to an earlier poll
// ends the session only after that earlier reply's bytes were read.
func TestDialRTMPTClosingReplyWaitsForEarlierOnes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const sid = "ABCDEFGHabcdefgh"
	sendAnswered := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentTypeFCS)
		switch {
		case r.URL.Path == "/open/1":
			io.WriteString(w, sid+"\n")
		case strings.HasPrefix(r.URL.Path, "/idle/"+sid+"/0"):
			// The first poll is answered only after the closing reply
			// to the send that followed it.
			select {
			case <-sendAnswered:
			case <-time.After(5 * time.Second):
			}
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte("\x01first "))
		case strings.HasPrefix(r.URL.Path, "/send/"+sid+"/"):
			w.Write([]byte("\x00last"))
			close(sendAnswered)
		case strings.HasPrefix(r.URL.Path, "/idle/"):
			http.NotFound(w, r) // the session is gone
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialRTMPT(ctx, "rtmpt://"+ln.Addr().String(), DialOptions{RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Let the first poll go out before the send.
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "first last" {
		t.Fatalf("read %q, want %q", got, "first last")
	}
}
