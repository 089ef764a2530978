package e2e

import (
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// TestGatewayRoQRNginxRTMP: RoQR clients reach a real nginx-rtmp through
// the gateway, which relays their messages over its own RTMP connections:
// ffmpeg publishes through `rtmphub bridge --to roqr://<gateway>`; one
// ffmpeg player reads straight from nginx-rtmp, another through a second
// RoQR bridge and the gateway.
func TestGatewayRoQRNginxRTMP(t *testing.T) {
	gatewayRoQR(t, "g3", false)
}

// TestGatewayRoQRDatagramsNginxRTMP: the same with the datagram profile
// on both bridges (the gateway offers it by default): inter frames and
// audio travel in QUIC DATAGRAMs on both RoQR legs.
func TestGatewayRoQRDatagramsNginxRTMP(t *testing.T) {
	gatewayRoQR(t, "g4", true)
}

func gatewayRoQR(t *testing.T, stream string, datagrams bool) {
	e2e(t)
	needFFmpeg(t)
	origin := startNginxRTMP(t)
	gw := startServer(t, "--quic-addr", "127.0.0.1:0", "--upstream", "rtmp://"+origin)
	qaddr, pin := quicEndpoint(t, gw)
	args := []string{"--pin", pin}
	if datagrams {
		args = append(args, "--roqr-datagrams")
	}
	pubBridge := startBridge(t, "roqr://"+qaddr, args...)
	playBridge := startBridge(t, "roqr://"+qaddr, args...)
	dir := t.TempDir()
	// nginx-rtmp keeps no GOP: a player starts at the next keyframe, so
	// keyframes come every 10 frames.
	const seconds = 12
	pub := startPublisher(t, "rtmp://"+pubBridge+"/live/"+stream, pubOpts{Seconds: seconds, GOP: 10})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg straight from nginx-rtmp", "rtmp://"+origin+"/live/"+stream),
		ffPlay(t, pub, dir, "ffmpeg via a roqr bridge and the gateway", "rtmp://"+playBridge+"/live/"+stream),
	}
	finishOriginPlayers(t, pub, players, seconds)

	roqr := map[string]string{"proto": "roqr"}
	if !sessiontest.Poll(15*time.Second, func() bool { return logCount(gw, "forwarded", roqr) >= 2 }) {
		t.Errorf("%d roqr connections forwarded, want 2\n%s", logCount(gw, "forwarded", roqr), gw.log.tail(40))
	}
	if n := logCount(gw, "forwarding", roqr); n != 2 {
		t.Errorf("%d roqr connections forwarding, want 2", n)
	}
	if n := logCount(gw, "publish", nil); n != 0 {
		t.Errorf("the gateway served %d publishers itself, want 0", n)
	}
	// The publisher's datagrams came in, the player's went out.
	var in, out float64
	lines, _ := gw.log.snapshot(0)
	for _, l := range lines {
		if l.str("msg") == "forwarded" && l.str("proto") == "roqr" {
			t.Logf("gateway: %s", l.Raw)
			r, _ := l.JSON["datagrams_received"].(float64)
			s, _ := l.JSON["datagrams_sent"].(float64)
			in += r
			out += s
		}
	}
	if datagrams && (in == 0 || out == 0) {
		t.Errorf("the gateway received %v and sent %v datagrams, want some each way", in, out)
	}
	if !datagrams && in+out != 0 {
		t.Errorf("the gateway received %v and sent %v datagrams without the datagram profile", in, out)
	}
	gw.requireAlive(t)
}
