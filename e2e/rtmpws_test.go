package e2e

import (
	"context"

	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
)

// wsClient connects the project's RTMP client to app over RTMP over
// WebSocket at addr (ws://addr/rtmp, or wss:// with d's TLS settings when
// secure); the tcUrl says rtmpws://addr/app as a page's would.
func wsClient(t testing.TB, ctx context.Context, d *rtmpws.Dialer, addr, app string, secure bool) *client.Conn {
	t.Helper()
	scheme := "rtmpws://"
	if secure {
		scheme = "rtmpwss://"
	}
	c, err := client.Dial(ctx, scheme+addr+"/"+app, client.Options{Dial: d.DialFunc(secure)})
	if err != nil {
		t.Fatalf("connect %s%s/%s over WebSocket: %v", scheme, addr, app, err)
	}
	return c
}

// TestRTMPWSCallOnEveryPort: the project's RTMP client over WebSocket, at
// /rtmp of the RTMP port (sniffed as HTTP) and of the HTTP port, connects
// to a scripted application and calls its methods; the script sees the
// protocol rtmpws and the client's address, and an RTMP client of the
// same instance sees both kinds of client in application.clients.
func TestRTMPWSCallOnEveryPort(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "wsprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	native, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/wsprobe/room", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	var d rtmpws.Dialer
	for _, addr := range []string{srv.Addr, srv.RTMPTAddr(t)} {
		c := wsClient(t, ctx, &d, addr, "wsprobe/room", false)
		res, err := c.Call(ctx, "whoami")
		if err != nil {
			t.Fatalf("%s: whoami: %v", addr, err)
		}
		if got := res.Args[0]; got != "rtmpws 127.0.0.1" {
			t.Errorf("%s: whoami = %v, want rtmpws 127.0.0.1", addr, got)
		}
		res, err = c.Call(ctx, "add", 2.0, 3.0)
		if err != nil || res.Args[0] != 5.0 {
			t.Errorf("%s: add(2, 3) = %v, %v", addr, res, err)
		}
		res, err = native.Call(ctx, "peers")
		if err != nil || res.Args[0] != "rtmp,rtmpws" {
			t.Errorf("%s: peers seen by the RTMP client = %v, %v; want rtmp,rtmpws", addr, res, err)
		}
		c.Close()
	}
	srv.requireAlive(t)
}
