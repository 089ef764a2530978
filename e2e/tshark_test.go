package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// TestTsharkDissectsSession captures an ffmpeg publish + play session on
// loopback and has Wireshark's RTMP dissector read it: no malformed packet,
// and the connect/publish/play status codes decoded from the AMF.
func TestTsharkDissectsSession(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "tshark")
	srv := startServer(t)
	dir := t.TempDir()
	pcap := filepath.Join(dir, "session.pcapng")

	capture := startCapture(t, srv.Port, pcap)

	pub := startPublisher(t, srv.URL("cap"), pubOpts{Seconds: 4, GOP: 25})
	pub.waitFrames(t, 25, 20*time.Second)
	player := startFFmpegPlayer(t, "ffmpeg player", srv.URL("cap"), filepath.Join(dir, "play.md5"), nil)
	pub.finish(t, 40*time.Second)
	awaitPlayerEnd(t, player, 15*time.Second)
	stopCapture(t, capture, pcap)

	decodeAs := fmt.Sprintf("tcp.port==%d,rtmpt", srv.Port)
	read := func(filter string, extra ...string) string {
		args := append([]string{"-n", "-r", pcap, "-d", decodeAs, "-Y", filter}, extra...)
		return strings.TrimSpace(run(t, time.Minute, "tshark", args...))
	}
	if all := read("rtmpt"); all == "" {
		t.Errorf("tshark dissected no RTMP at all")
	} else {
		t.Logf("%d frames dissected as RTMP", len(strings.Split(all, "\n")))
	}

	if bad := read("_ws.malformed"); bad != "" {
		detail := read("_ws.malformed", "-V")
		t.Errorf("tshark flags malformed RTMP packets:\n%s\n\ndetail:\n%s", tailString(bad, 3000), tailString(detail, 6000))
	}
	for _, code := range []string{"NetConnection.Connect.Success", "NetStream.Publish.Start", "NetStream.Play.Start"} {
		if read(fmt.Sprintf("amf.string == %q", code)) == "" {
			t.Errorf("tshark found no AMF string %q in the capture: the session was not dissected as RTMP", code)
		}
	}
	if read("rtmpt.video.data") == "" || read("rtmpt.audio.data") == "" {
		t.Errorf("tshark found no dissected audio/video messages")
	}
}

// startCapture starts tshark capturing TCP port on loopback into pcap,
// and waits until it captures; it skips the test where capturing is not
// permitted (outside CI).
func startCapture(t *testing.T, port int, pcap string) *proc {
	t.Helper()
	capture := startProc(t, 2*time.Minute, "tshark", "-n", "-i", "lo", "-f", fmt.Sprintf("tcp port %d", port), "-w", pcap)
	if !sessiontest.Poll(30*time.Second, func() bool {
		return strings.Contains(capture.Stderr.String(), "Capturing on") || capture.exited()
	}) || capture.exited() {
		msg := fmt.Sprintf("tshark did not start capturing on lo (exited %v):\n%s", capture.exited(), capture.Stderr.String())
		if !inCI() && (strings.Contains(msg, "ermission") || strings.Contains(msg, "Operation not permitted")) {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return capture
}

// stopCapture ends a capture started by startCapture, after letting the
// last segments reach it, and checks that it wrote something.
func stopCapture(t *testing.T, capture *proc, pcap string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	capture.signal(syscall.SIGINT)
	if !capture.wait(15 * time.Second) {
		t.Fatalf("tshark did not stop on SIGINT")
	}
	t.Logf("tshark: %s", strings.TrimSpace(capture.Stderr.String()))
	if st, err := os.Stat(pcap); err != nil || st.Size() == 0 {
		t.Fatalf("no capture written: %v", err)
	}
}
