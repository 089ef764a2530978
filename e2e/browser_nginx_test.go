package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// spkiHash is the base64 SHA-256 of the public key of the PEM certificate
// in certFile, as --ignore-certificate-errors-spki-list takes it.
func spkiHash(t testing.TB, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestBrowserChatThroughNginxTLS: the chat page behind docs/nginx-rtmpws.conf
// terminating TLS (issue #15, "through an nginx reverse proxy with TLS
// termination"). Chromium (a process of the test's own, accepting only the
// certificate made here, by its public key) opens
// https://127.0.0.1:<nginx>/chat/: the page, /sdk/rtmphub.js and the
// WebSocket (the page's relative URL becomes wss://…/rtmp) all go through
// nginx to the hub's HTTP port. The script sees the page as rtmpwss, from
// the browser's address, which only X-Forwarded-For carries: nginx reaches
// the hub from 127.0.0.2 (proxy_bind, the one line the test adds to the
// documented config), the only address the hub trusts. add returns its
// result, and a topic (SharedObject slot) the page sets reaches a Go
// client connected over plain RTMP in the same room. Without the Upgrade
// and Connection headers in the config the hub answers 426 and the page
// never connects.
func TestBrowserChatThroughNginxTLS(t *testing.T) {
	e2e(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--trusted-proxies", "127.0.0.2/32")
	copyApp(t, srv.DataDir, "chat")
	tlsPort := freeLoopbackPort(t)
	startNginx(t, "nginx-rtmpws.conf", map[string]string{
		"server 127.0.0.1:8080;": "server " + srv.RTMPTAddr(t) + ";",
		"listen 443 ssl;":        fmt.Sprintf("listen 127.0.0.1:%d ssl;", tlsPort),
		"ssl_certificate     /etc/ssl/rtmphub/fullchain.pem;": "ssl_certificate " + cert + ";",
		"ssl_certificate_key /etc/ssl/rtmphub/privkey.pem;":   "ssl_certificate_key " + key + ";",
		"    upstream rtmphub {":                              "    proxy_bind 127.0.0.2;\n    upstream rtmphub {",
	})
	b := startPrivateBrowser(t, chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash(t, cert)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The other side of the room: a Go client over plain RTMP.
	rick, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/chat/tls", client.Options{ConnectArgs: []any{"rick"}})
	if err != nil {
		t.Fatalf("rtmp client: %v", err)
	}
	t.Cleanup(func() { rick.Close() })
	if err := rick.UseSO("room", false, 0); err != nil {
		t.Fatal(err)
	}
	if m, err := rick.ReadSO(ctx, "room"); err != nil || len(m.Events) == 0 || m.Events[0].Type != message.SOUseSuccess {
		t.Fatalf("rtmp client: use of room: %+v, %v", m, err)
	}

	base := fmt.Sprintf("https://127.0.0.1:%d", tlsPort)
	p := openChat(t, b, base, "tls", "erin", 3, false)
	p.waitTopic(t, "welcome")
	var loc string
	p.eval(t, `location.protocol + "//" + location.host`, &loc)
	if loc != base {
		t.Fatalf("the page is at %s, want %s", loc, base)
	}

	var me struct{ Nick, Protocol, IP string }
	p.eval(t, `chat.nc.callAsync("whoami").then(r => ({Nick: r.nick, Protocol: r.protocol, IP: r.ip}))`, &me)
	if me != (struct{ Nick, Protocol, IP string }{"erin", "rtmpwss", "127.0.0.1"}) {
		t.Errorf("whoami through nginx: %+v, want erin over rtmpwss from 127.0.0.1 (nginx is 127.0.0.2)", me)
	}
	var list string
	p.eval(t, `chat.nc.callAsync("listClients").then(r => r.list)`, &list)
	if list != "rick/rtmp,erin/rtmpwss" {
		t.Errorf("listClients: %q, want rick/rtmp,erin/rtmpwss", list)
	}
	var sum float64
	p.eval(t, `chat.nc.callAsync("add", 20.5, 21.5)`, &sum)
	if sum != 42 {
		t.Errorf("add(20.5, 21.5) through nginx: %v", sum)
	}

	// The page changes the topic: the RTMP client hears it.
	p.typeText(t, "#new-topic", "topic over wss")
	p.click(t, "#set-topic")
	rctx, rcancel := context.WithTimeout(ctx, chatStep)
	defer rcancel()
	var seen []message.SOEvent
	for found := false; !found; {
		m, err := rick.ReadSO(rctx, "room")
		if err != nil {
			t.Fatalf("rtmp client: no change of topic from the page: %v; got %+v\nconsole:\n%s", err, seen, p.dump())
		}
		for _, e := range m.Events {
			found = found || e.Type == message.SOChange && e.Key == "topic" && e.Value == "topic over wss"
			seen = append(seen, e)
		}
	}
	p.waitTopic(t, "topic over wss")
	p.waitFor(t, `document.getElementById('status').textContent.includes('(rtmpwss)')`, chatStep)
	p.noErrors(t)

	// The hub saw no WebSocket but from nginx.
	if n := logCount(srv, "connected", map[string]string{"proto": "rtmpws"}); n != 0 {
		t.Errorf("%d rtmpws connections logged, want none", n)
	}
	if n := logCount(srv, "connected", map[string]string{"proto": "rtmpwss"}); n != 1 {
		t.Errorf("%d rtmpwss connections logged, want 1", n)
	}
	srv.requireAlive(t)
}
