package session

import (
	"github.com/rtmphub/rtmphub/session/live"
	"time"
)

// The access log: one line, msg="access", per connect, publish, play,
// unpublish and disconnect, with an event attribute and the client's
// identity, so that one filter finds a client's whole story.

// accessLog writes an access line for c: client, ip, protocol, then app
// and instance once connected, then attrs.
func (c *Client) accessLog(event string, attrs ...any) {
	a := make([]any, 0, 12+len(attrs))
	a = append(a, "event", event, "client", c.id, "ip", c.ip, "protocol", c.info.Protocol)
	if c.app != "" {
		a = append(a, "app", c.app)
	}
	if c.inst != nil {
		a = append(a, "instance", c.inst.name)
	}
	a = append(a, attrs...)
	c.srv.log.Info("access", a...)
}

// accessDisconnect logs the end of c and adds its traffic to the
// server's totals. It runs once, on the reader goroutine, after cleanup.
func (c *Client) accessDisconnect() {
	in, out := c.t.BytesRead(), c.t.BytesWritten()
	c.bytesIn.Store(in)
	c.srv.stats.BytesIn.Add(in)
	c.srv.stats.BytesOut.Add(out)
	reason := "closed"
	if c.reason != nil {
		reason = c.reason.Error()
	}
	c.accessLog("disconnect", "bytes_in", in, "bytes_out", out,
		"duration", durationString(time.Since(c.connectedAt)), "reason", reason)
}

func durationString(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// accessUnpublish logs the end of publication p.
func (c *Client) accessUnpublish(p *live.Publication, reason string) {
	messages, bytes := p.Counts()
	c.accessLog("unpublish", "stream", p.Stream().Name(), "bytes", bytes, "messages", messages,
		"duration", durationString(time.Since(p.StartedAt())), "reason", reason)
}

// accessDenied logs a refused request.
func (c *Client) accessDenied(event, stream, reason string) {
	c.accessLog(event, "stream", stream, "allowed", false, "reason", reason)
}
