package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestSDKBrowserNetStream: a page imports the JavaScript library from the
// hub (/sdk/rtmphub.js), connects over RTMP-in-WebSocket and plays, with
// NetStream.play into a <video>, what ffmpeg publishes over RTMP: the
// stream's statuses and onMetaData reach the page, and Chromium decodes
// at least 90% of the frames of a 4 s window with currentTime advancing.
func TestSDKBrowserNetStream(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	b := startBrowser(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("sdk1"), pubOpts{Seconds: 60, GOP: 25})
	t.Cleanup(func() { pub.stop(5 * time.Second) })
	pub.waitFrames(t, 25, 30*time.Second)

	// Any page of the hub's origin will do: the module itself.
	p := b.open(t, "http://"+httpAddr+"/sdk/rtmphub.js")
	p.eval(t, `(async () => {
		const m = await import("/sdk/rtmphub.js");
		document.body.innerHTML = '<video id="v" muted autoplay playsinline width="320" height="240"></video>';
		const v = document.getElementById("v");
		window.st = { nc: [], ns: [], md: null };
		const nc = new m.NetConnection();
		window.nc = nc;
		nc.onStatus = (i) => {
			st.nc.push(i.code);
			if (i.code !== "NetConnection.Connect.Success") return;
			const ns = new m.NetStream(nc);
			window.ns = ns;
			ns.onStatus = (i) => st.ns.push(i.code);
			ns.client = { onMetaData(md) { st.md = md; } };
			ns.attach(v);
			ns.play("sdk1", -1);
		};
		nc.connect("/live");
		return true;
	})()`, nil)
	p.waitFor(t, `st.ns.includes("NetStream.Play.Start") && st.md && st.md.width === 320`, 15*time.Second)
	p.waitFor(t, `document.getElementById("v").currentTime > 0.5`, 20*time.Second)
	type q struct {
		Frames int     `json:"frames"`
		Time   float64 `json:"time"`
	}
	var a, z q
	const probe = `(() => { const v = document.getElementById("v"); return { frames: v.getVideoPlaybackQuality().totalVideoFrames, time: v.currentTime }; })()`
	p.eval(t, probe, &a)
	time.Sleep(4 * time.Second)
	p.eval(t, probe, &z)
	frames, adv := z.Frames-a.Frames, z.Time-a.Time
	t.Logf("NetStream in Chromium: %d frames and %.2f s in 4 s (statuses %s)", frames, adv, evalString(t, p, `JSON.stringify(st)`))
	if float64(frames) < 0.9*4*pub.FPS || adv < 0.9*4 {
		t.Errorf("decoded %d frames, currentTime +%.2f s in 4 s; want >= %.0f frames and >= 3.6 s", frames, adv, 0.9*4*pub.FPS)
	}
	var w, h int
	p.eval(t, `document.getElementById("v").videoWidth`, &w)
	p.eval(t, `document.getElementById("v").videoHeight`, &h)
	if w != 320 || h != 240 {
		t.Errorf("video %dx%d, want 320x240", w, h)
	}
	// close() deletes the stream; the connection stays.
	p.eval(t, `(ns.close(), nc.connected)`, nil)
	p.noErrors(t)
	srv.requireAlive(t)
}

func evalString(t *testing.T, p *page, js string) string {
	var s string
	if err := p.evalErr(js, &s, 5*time.Second); err != nil {
		return fmt.Sprint(err)
	}
	return s
}
