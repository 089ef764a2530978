package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/internal/sockio"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/web/httpflv"
)

// serveFLV starts an HTTP-FLV or WebSocket-FLV viewer. An HTTP-FLV
// viewer takes the connection from the HTTP server and lives on without
// this goroutine (see httpflv); a WebSocket one keeps it, to read the
// peer's close.
func (h *Handler) serveFLV(w http.ResponseWriter, r *http.Request, t target) {
	ws := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	proto, pi := ProtoHTTPFLV, iFLV
	if ws {
		proto, pi = ProtoWSFLV, iWS
	}
	req := h.request(r, t, proto)
	if !h.authorize(w, r, req) {
		return
	}
	if r.Method == http.MethodHead && !ws {
		flvHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	stall := h.srv.Config().StallTimeout
	var (
		sink      httpflv.Sink
		closeConn func()
		notFound  func()
		wc        *websocket.Conn
	)
	if ws {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: h.anyOrig, OriginPatterns: h.originPatterns()})
		if err != nil {
			return // Accept answered
		}
		wc, sink = c, wsSink{c}
		closeConn = func() { c.CloseNow() }
		notFound = func() { c.Close(websocket.StatusPolicyViolation, "stream not found") }
	} else {
		s, err := hijackFLV(w, r)
		if err != nil {
			h.log.Debug("http-flv: cannot take the connection", "err", err.Error())
			return
		}
		sink, closeConn = s, s.close
		if s.rc != nil {
			sink = inlineConnSink{s}
		}
		notFound = func() { s.refuse(stall) }
	}

	start := time.Now()
	ready := make(chan struct{})
	var (
		v      *httpflv.Viewer
		detach func()
	)
	v = httpflv.New(h.srv.PlayerLimits(), stall, sink, func(why error) {
		<-ready
		closeConn()
		h.untrack(v)
		defer h.viewers.Done()
		if detach == nil {
			return // never attached
		}
		detach()
		n := v.Bytes()
		h.bytes[pi].Add(n)
		reason := "closed"
		if why != nil {
			reason = why.Error()
		}
		h.log.Info("access", "event", "watch_end", "ip", req.IP, "protocol", proto, "app", req.App,
			"instance", req.Instance, "stream", req.Stream, "bytes_out", n,
			"duration", time.Since(start).Round(time.Millisecond).String(), "reason", reason)
	})
	v.SetProtocol(proto)
	h.viewers.Add(1)
	if !h.track(v) {
		close(ready)
		v.Stop(errClosing)
		return
	}
	// A viewer is a player of the audience: its media may wait for the
	// merged-write window, when one is set.
	_, d, err := h.srv.Watch(req, v, live.ReaderOptions{Merge: true})
	detach = d
	close(ready)
	if err != nil {
		notFound()
		v.Stop(err)
		return
	}
	h.requests[pi].Add(1)
	if wc != nil {
		v.Run(wc.CloseRead(h.ctx)) // the viewer's close frame ends it; it sends nothing else
	}
}

var errClosing = errors.New("web: server stopping")

// track remembers a running viewer, for Close; false when closing.
func (h *Handler) track(v *httpflv.Viewer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	if h.running == nil {
		h.running = make(map[*httpflv.Viewer]struct{})
	}
	h.running[v] = struct{}{}
	return true
}

func (h *Handler) untrack(v *httpflv.Viewer) {
	h.mu.Lock()
	delete(h.running, v)
	h.mu.Unlock()
}

func (h *Handler) originPatterns() []string {
	if h.anyOrig {
		return nil
	}
	var ps []string
	for o := range h.origins {
		if _, host, ok := strings.Cut(o, "://"); ok {
			ps = append(ps, host)
		} else {
			ps = append(ps, o)
		}
	}
	return ps
}

func flvHeaders(hd http.Header) {
	hd.Set("Content-Type", "video/x-flv")
	hd.Set("Cache-Control", "no-cache, no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
}

// connSink writes an HTTP-FLV body straight to the connection, which it
// took from the HTTP server: the body has no length and ends when the
// connection closes (HTTP/1.1 allows it, every player reads it), so
// every batch of tags is one write, with no chunk framing. The response
// head goes out with the first batch, once the viewer is attached to a
// live stream; refuse answers 404 instead.
type connSink struct {
	nc     net.Conn
	rc     syscall.RawConn // nil: no non-blocking writes (TLS)
	iov    []sockio.Iovec
	head   []byte // the response head, until written
	origin string // the Access-Control-Allow-Origin answer, for refuse
}

// inlineConnSink is a connSink on a plain TCP socket: the publisher's
// goroutine writes to it (httpflv.Inline).
type inlineConnSink struct{ *connSink }

func (s inlineConnSink) TryWritev(bufs [][]byte) (int, error) {
	n, iov, err := sockio.WritevNow(s.rc, bufs, s.connSink.iov)
	s.connSink.iov = iov // the scratch is the connSink's, shared by every copy
	return n, err
}

// hijackFLV takes the connection of r from the HTTP server.
func hijackFLV(w http.ResponseWriter, r *http.Request) (*connSink, error) {
	hd := w.Header()
	flvHeaders(hd)
	hd.Set("Connection", "close")
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.%d 200 OK\r\n", min(r.ProtoMinor, 1))
	if err := hd.Write(&b); err != nil {
		nc.Close()
		return nil, err
	}
	b.WriteString("\r\n")
	if brw.Reader.Buffered() > 0 {
		// A pipelined request after an endless body can never be
		// answered; the viewer gets the stream and the request is dropped.
		brw.Reader.Discard(brw.Reader.Buffered())
	}
	return &connSink{nc: nc, rc: sockio.RawConnOf(nc), head: []byte(b.String()),
		origin: hd.Get("Access-Control-Allow-Origin")}, nil
}

// WriteFLV writes p (after the response head, the first time) within
// deadline. The deadline is lifted after: the publisher's non-blocking
// writes (inlineConnSink) must never find one that passed.
func (s *connSink) WriteFLV(p []byte, deadline time.Time) error {
	s.nc.SetWriteDeadline(deadline)
	if s.head != nil {
		if _, err := s.nc.Write(s.head); err != nil {
			return err
		}
		s.head = nil
	}
	_, err := s.nc.Write(p)
	if err == nil {
		err = s.nc.SetWriteDeadline(time.Time{})
	}
	return err
}

// refuse answers 404 on a connection whose stream is not live.
func (s *connSink) refuse(stall time.Duration) {
	head := "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\nConnection: close\r\n"
	if s.origin != "" {
		head += "Access-Control-Allow-Origin: " + s.origin + "\r\n"
	}
	s.nc.SetWriteDeadline(time.Now().Add(stall))
	io.WriteString(s.nc, head+"\r\nstream not found\n")
}

func (s *connSink) close() { s.nc.Close() }

// wsSink sends each batch of tags as one binary WebSocket message.
type wsSink struct{ c *websocket.Conn }

func (s wsSink) WriteFLV(p []byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return s.c.Write(ctx, websocket.MessageBinary, p)
}
