package bridge

import (
	"context"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// A RoQR client carries whole messages, not RTMP bytes, so the gateway
// cannot forward it byte for byte: it is the RTMP client of the origin
// leg (handshake, chunking, acknowledgements) and relays messages between
// the two legs, as the client bridge does in the other direction.
//
// What is per hop — it describes or acknowledges the bytes of one
// connection, and the origin leg's are the gateway's own:
//
//   - SetChunkSize: the origin leg is written in gatewayChunkSize chunks,
//     announced first. A client's SetChunkSize (meaningless on RoQR) is
//     not forwarded: it would change the chunking of our writer.
//   - Abort: names a partly sent message of a chunk stream. Never
//     forwarded either way: our writer never abandons a message, and an
//     origin's Abort was applied by our chunk reader.
//   - Acknowledgement: counts the bytes of one leg. The gateway
//     acknowledges the origin itself (rtmp.Conn, at the window the origin
//     set); acknowledgements are not forwarded either way.
//   - WindowAckSize and SetPeerBandwidth: ask the peer to acknowledge the
//     bytes of this leg (and to bound its sending by them). A client's are
//     not forwarded: the gateway does not use the origin's
//     acknowledgements, and none is needed on QUIC.
//
// From the origin, SetChunkSize, WindowAckSize and SetPeerBandwidth are
// forwarded: a hub's own RoQR service sends them too, a RoQR client
// ignores them or applies them to its own chunked leg (the client bridge
// writes to its local player with the origin's chunk size). Everything
// else — commands, user control (pings are answered end to end), data,
// media, shared objects, aggregates — crosses unchanged.

// gatewayChunkSize is the chunk size the gateway writes to the origin
// with: the size most servers and encoders use (FFmpeg, nginx-rtmp, our
// session core), large enough that a video frame takes few chunk headers.
const gatewayChunkSize = 4096

// gatewayMaxMessage bounds a message read from the origin (RTMP's own
// limit).
const gatewayMaxMessage = 16 << 20

// toOrigin says whether a RoQR client's message is forwarded to the
// origin (see above), and makes its chunk stream id valid for chunking.
func toOrigin(m *message.Message) bool {
	if m.Type.IsControl() && m.Type != message.TypeUserControl {
		return false
	}
	if m.ChunkStreamID < 2 {
		m.ChunkStreamID = 0 // RoQR allows 0 and 1; our writer picks the usual one
	}
	return true
}

// fromOrigin says whether an origin's message is forwarded to the RoQR
// client (see above).
func fromOrigin(m *message.Message) bool {
	return m.Type != message.TypeAck && m.Type != message.TypeAbort
}

// ServeRoQR forwards a RoQR client to the origin until either end closes:
// it dials the origin (with the PROXY protocol header, when configured),
// runs the RTMP client handshake and relays messages both ways. remoteIP,
// when set, is the client's address as a trusted proxy named it. It owns
// rc and closes it. When the client ends, the origin's last replies get
// Linger to come; when the origin ends or fails, the client is closed at
// once (what was written to it is still delivered).
func (g *Gateway) ServeRoQR(ctx context.Context, rc *rtmpquic.RoQRConn, remoteIP string) {
	start := time.Now()
	log := g.log.With("proto", rtmpquic.RoQRProtocol, "gw", g.ids.Add(1), "client", rc.RemoteAddr().String())
	nc, err := g.dial(ctx, clientAddr(rc.RemoteAddr(), remoteIP), log)
	if err != nil {
		rc.Close()
		return
	}
	// The handshake (with a Flash Player digest, as FFmpeg makes it) and
	// the chunk size announcement get DialTimeout; ctx ending cuts them.
	nc.SetDeadline(time.Now().Add(g.cfg.DialTimeout))
	stopSetup := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	up, err := rtmp.Dial(nc, true, gatewayMaxMessage)
	if err == nil {
		err = up.WriteMessages([]message.Message{*message.SetChunkSize(gatewayChunkSize)})
	}
	stopSetup()
	if err != nil {
		log.Warn("upstream handshake failed, refusing client", "upstream", g.addr, "err", err.Error())
		nc.Close()
		rc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	_, datagrams := rc.DatagramStats()
	log.Debug("forwarding", "upstream", g.addr, "datagrams", datagrams, "setup", time.Since(start).Round(time.Microsecond).String())
	p := &msgPipe{a: rc, b: up, keepAB: toOrigin, keepBA: fromOrigin, linger: g.cfg.Linger, stall: g.cfg.StallTimeout}
	if cw, ok := nc.(closeWriter); ok {
		p.halfCloseB = cw.CloseWrite
	}
	end := p.run(ctx)
	closedBy := "client"
	switch {
	case ctx.Err() != nil:
		closedBy = "gateway"
	case end.side == 1:
		closedBy = "upstream"
	}
	attrs := []any{"upstream", g.addr, "sent", up.BytesWritten(), "received", up.BytesRead(),
		"duration", time.Since(start).Round(time.Millisecond).String(), "closed_by", closedBy}
	attrs = append(attrs, datagramAttrs(rc)...)
	if end.err != nil {
		attrs = append(attrs, "err", end.err.Error())
	}
	log.Info("forwarded", attrs...)
}
