package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// TestBridgeRoQRDatagrams: a local RTMP client talks through the client
// bridge to a RoQR hub, both ends offering datagrams. Its media reaches
// the hub whole and in order, inter frames in datagrams, and the hub's
// media reaches it the same way.
func TestBridgeRoQRDatagrams(t *testing.T) {
	cert, _, err := rtmpquic.LoadOrCreateSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := rtmpquic.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}},
		rtmpquic.Config{IdleTimeout: 5 * time.Second, RoQR: true, RoQRDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ln.Shutdown(ctx)
	}()
	bridge := startRoQRBridge(t, ln.Addr().String(), tunnel.Fingerprint(cert.Certificate[0]), true)

	nc, err := net.DialTimeout("tcp", bridge, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	local, err := rtmp.Dial(nc, false, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A QUIC stream reaches the hub with its first bytes.
	typ, p, _ := message.EncodeCommand(&message.Command{Name: "connect", TransactionID: 1}, false)
	if err := local.WriteMessages([]message.Message{{Type: typ, Payload: p}}); err != nil {
		t.Fatal(err)
	}
	hubc := make(chan *rtmpquic.RoQRConn, 1)
	go func() {
		c, err := ln.AcceptRoQR()
		if err == nil {
			hubc <- c
		}
	}()
	var hub *rtmpquic.RoQRConn
	select {
	case hub = <-hubc:
		defer hub.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the bridge did not reach the hub")
	}

	// media is a video stream: a sequence header, a keyframe, inter frames.
	media := func(n int) []message.Message {
		msgs := []message.Message{{Type: message.TypeVideo, StreamID: 1, Payload: []byte{0x17, 0, 0, 0, 0, 1}}}
		for i := range n {
			p := []byte{0x27, 1, 0, 0, 0, byte(i)}
			if i == 0 {
				p[0] = 0x17
			}
			msgs = append(msgs, message.Message{Type: message.TypeVideo, StreamID: 1, Timestamp: uint32(i * 40), Payload: p})
		}
		return msgs
	}
	send := func(write func([]message.Message) error, msgs []message.Message) {
		for i := range msgs {
			if err := write(msgs[i : i+1]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(25 * time.Millisecond) // real time, as an encoder sends
		}
	}
	check := func(dir string, read func() (*message.Message, error), want []message.Message) {
		for i, w := range want {
			m, err := read()
			if err != nil {
				t.Fatalf("%s: message %d: %v", dir, i, err)
			}
			for m.Type != message.TypeVideo { // the bridge's own control messages
				if m, err = read(); err != nil {
					t.Fatalf("%s: message %d: %v", dir, i, err)
				}
			}
			if m.Timestamp != w.Timestamp || !bytes.Equal(m.Payload, w.Payload) {
				t.Fatalf("%s: message %d is %v, want %v", dir, i, m, &w)
			}
		}
	}
	up := media(20)
	go send(local.WriteMessages, up)
	hub.SetReadDeadline(time.Now().Add(10 * time.Second))
	check("to the hub", hub.ReadMessage, up)
	down := media(20)
	go send(hub.WriteMessages, down)
	check("from the hub", local.ReadMessage, down)
	s, _ := hub.DatagramStats()
	if s.Received < 10 || s.Sent < 10 {
		t.Errorf("hub datagram stats %+v: want ≥ 10 received and sent (no loss on loopback)", s)
	}
}
