package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// TestQUICMigrationKeepsPlaying: a Go player on rtmpquic.Dial plays a
// live stream ffmpeg publishes, moves its QUIC connection to a new local
// UDP socket (a new client address) mid-stream, and keeps receiving video
// on the same RTMP session, without a stall.
func TestQUICMigrationKeepsPlaying(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "127.0.0.1:0")
	addr, pin := quicEndpoint(t, srv)
	pub := startPublisher(t, srv.URL("m1"), pubOpts{Seconds: 14, GOP: 25})
	pub.waitFrames(t, 25, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var qc *rtmpquic.Conn
	c, err := client.Dial(ctx, "rtmp://"+addr+"/live", client.Options{
		Dial: func(ctx context.Context, _ string) (net.Conn, error) {
			nc, err := rtmpquic.Dial(ctx, "quic://"+addr, rtmpquic.DialOptions{PinSHA256: pin})
			if err != nil {
				return nil, err
			}
			qc = nc.(*rtmpquic.Conn)
			return qc, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msid, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(ctx, msid, "m1", -1); err != nil {
		t.Fatal(err)
	}
	// Count video for a while, migrate, count again; note the longest
	// silence between two video messages.
	var (
		before, after int
		migrated      bool
		last          = time.Now()
		maxGap        time.Duration
		lastTS        uint32
		backwards     int
	)
	start := time.Now()
	oldLocal := qc.LocalAddr().String()
	for time.Since(start) < 6*time.Second {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read after %v (migrated %v): %v", time.Since(start).Round(time.Millisecond), migrated, err)
		}
		if m.Type != message.TypeVideo {
			continue
		}
		now := time.Now()
		if g := now.Sub(last); g > maxGap && before > 0 {
			maxGap = g
		}
		last = now
		if m.Timestamp < lastTS {
			backwards++
		}
		lastTS = m.Timestamp
		if !migrated {
			before++
		} else {
			after++
		}
		if !migrated && time.Since(start) > 3*time.Second {
			mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
			err := qc.Migrate(mctx)
			mcancel()
			if err != nil {
				t.Fatalf("migrate: %v", err)
			}
			migrated = true
		}
	}
	t.Logf("video messages: %d before migration (local %s), %d after (local %s); longest gap %v",
		before, oldLocal, after, qc.LocalAddr(), maxGap.Round(time.Millisecond))
	if qc.LocalAddr().String() == oldLocal {
		t.Errorf("local address unchanged: %s", oldLocal)
	}
	if after < 50 { // ~3s at 25 fps
		t.Errorf("only %d video messages in the 3s after migration", after)
	}
	if maxGap > time.Second {
		t.Errorf("video stalled %v around the migration", maxGap)
	}
	if backwards > 0 {
		t.Errorf("%d video timestamps went backwards", backwards)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "rtmpq"}); n != 1 {
		t.Errorf("%d rtmpq players logged, want 1", n)
	}
	pub.stop(5 * time.Second)
}

// TestRoQRPlay: a Go client speaking RoQR (ALPN roqr: RTMP messages framed
// directly on a QUIC stream, no handshake, no chunking) connects, creates
// a stream and plays what ffmpeg publishes over RTMP; the hub serves it
// from the same session core, reporting protocol "roqr".
func TestRoQRPlay(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "127.0.0.1:0")
	addr, pin := quicEndpoint(t, srv)
	pub := startPublisher(t, srv.URL("r1"), pubOpts{Seconds: 12, GOP: 25})
	pub.waitFrames(t, 25, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := rtmpquic.DialRoQR(ctx, "roqr://"+addr, rtmpquic.DialOptions{PinSHA256: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	send := func(msid uint32, cmd *message.Command) {
		t.Helper()
		typ, p, err := message.EncodeCommand(cmd, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.WriteMessages([]message.Message{{Type: typ, StreamID: msid, Payload: p}}); err != nil {
			t.Fatal(err)
		}
	}
	// result waits for the _result of transaction tx.
	result := func(tx float64) *message.Command {
		t.Helper()
		rc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			m, err := rc.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for result %v: %v", tx, err)
			}
			if m.Type != message.TypeCommandAMF0 {
				continue
			}
			c, err := message.DecodeCommand(m)
			if err != nil {
				t.Fatal(err)
			}
			if c.TransactionID == tx {
				if c.Name != "_result" {
					t.Fatalf("transaction %v: %s %v", tx, c.Name, c.Args)
				}
				return c
			}
		}
	}
	send(0, &message.Command{Name: "connect", TransactionID: 1, Object: amf.Object{
		{Key: "app", Value: "live"},
		{Key: "flashVer", Value: "LNX 9,0,124,2"},
		{Key: "tcUrl", Value: "roqr://" + addr + "/live"},
		{Key: "objectEncoding", Value: 0.0},
	}})
	result(1)
	send(0, &message.Command{Name: "createStream", TransactionID: 2})
	id, ok := amf.Number(result(2).Arg(0))
	if !ok {
		t.Fatal("createStream returned no stream id")
	}
	msid := uint32(id)
	send(msid, &message.Command{Name: "play", Args: []any{"r1", -1000.0}})

	var video, backwards int
	var firstKey, lastTS uint32
	start := time.Now()
	for video < 100 && time.Since(start) < 15*time.Second {
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := rc.ReadMessage()
		if err != nil {
			t.Fatalf("after %d video messages: %v", video, err)
		}
		if m.Type != message.TypeVideo || len(m.Payload) < 2 {
			continue
		}
		if video == 0 {
			firstKey = uint32(m.Payload[0] >> 4)
		} else if m.Timestamp < lastTS {
			backwards++
		}
		lastTS = m.Timestamp
		video++
	}
	t.Logf("roqr player: %d video messages in %v, first frame type %d", video, time.Since(start).Round(time.Millisecond), firstKey)
	if video < 100 {
		t.Errorf("only %d video messages", video)
	}
	if firstKey != 1 {
		t.Errorf("first video message is not a keyframe (frame type %d)", firstKey)
	}
	if backwards > 0 {
		t.Errorf("%d timestamps went backwards", backwards)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "roqr"}); n != 1 {
		t.Errorf("%d roqr players logged, want 1", n)
	}
	pub.stop(5 * time.Second)
}

// TestBridgeRoQRDatagrams: ffmpeg → rtmphub bridge --roqr-datagrams →
// RoQR with media in QUIC DATAGRAMs → hub, publish and play: the player
// decodes what was published, and the hub logs that inter frames and
// audio did travel in datagrams both ways (the publisher's to the hub,
// the hub's to the player).
func TestBridgeRoQRDatagrams(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "127.0.0.1:0") // --roqr-datagrams is on by default
	addr, pin := quicEndpoint(t, srv)
	if l, ok := srv.log.find(0, func(l logLine) bool { return l.str("msg") == "listening" && l.str("transport") == "rtmpq" }); !ok || l.JSON["roqr_datagrams"] != true {
		t.Errorf("the hub does not offer RoQR datagrams: %v", l.Raw)
	}
	bridgedPublishPlay(t, srv, "roqr://"+addr, "roqr", "--pin", pin, "--roqr-datagrams")
	// Each RoQR connection logs its datagram counters when it ends.
	var sent, received, delivered float64
	ok := sessiontest.Poll(10*time.Second, func() bool {
		sent, received, delivered = 0, 0, 0
		lines, _ := srv.log.snapshot(0)
		n := 0
		for _, l := range lines {
			if l.str("msg") != "roqr datagrams" {
				continue
			}
			n++
			s, _ := l.JSON["sent"].(float64)
			r, _ := l.JSON["received"].(float64)
			d, _ := l.JSON["delivered"].(float64)
			sent, received, delivered = sent+s, received+r, delivered+d
		}
		return n == 2
	})
	t.Logf("hub datagrams: sent %.0f (to the player), received %.0f, delivered %.0f (from the publisher)", sent, received, delivered)
	if !ok {
		t.Fatalf("the hub did not log the datagram counters of its two RoQR connections\n%s", srv.log.tail(40))
	}
	// 12 s at 25 fps with audio: hundreds each way.
	if sent < 200 || received < 200 || delivered < received*9/10 {
		t.Errorf("datagrams: %.0f sent, %.0f received, %.0f delivered; want hundreds, nearly all delivered", sent, received, delivered)
	}
}
