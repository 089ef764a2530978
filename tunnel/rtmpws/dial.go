package rtmpws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/coder/websocket"
)

// Dialer opens RTMP-over-WebSocket connections. The zero value dials
// ws:// and wss:// URLs with the system's roots and no extra headers.
type Dialer struct {
	// TLSConfig is used for wss:// (nil: the defaults).
	TLSConfig *tls.Config
	// Header is sent with the upgrade request (an Origin, say).
	Header http.Header
	// NoSubprotocol leaves out the offer of the subprotocol "rtmp".
	NoSubprotocol bool
	// NetDialer opens the TCP connection (nil: a zero net.Dialer), to set
	// a local address, say.
	NetDialer *net.Dialer
}

// Dial opens a WebSocket to rawURL (ws://host:port/rtmp or wss://...) and
// returns it as a net.Conn of RTMP bytes, for rtmp/client's Options.Dial
// (see DialFunc) or any RTMP client over a net.Conn.
func Dial(ctx context.Context, rawURL string) (*Conn, error) {
	var d Dialer
	return d.Dial(ctx, rawURL)
}

// Dial opens a WebSocket to rawURL.
func (d *Dialer) Dial(ctx context.Context, rawURL string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("rtmpws: want a ws:// or wss:// URL, got %q", rawURL)
	}
	// The transport is this connection's own, so that its socket is known
	// (Close closes it when the server does not answer the close frame)
	// and HTTP/2, which has no upgrade, is never tried.
	var (
		mu  sync.Mutex
		raw net.Conn
	)
	nd := d.NetDialer
	if nd == nil {
		nd = &net.Dialer{}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				raw = c
				mu.Unlock()
			}
			return c, err
		},
		TLSClientConfig: d.TLSConfig,
		Proxy:           nil,
	}
	defer tr.CloseIdleConnections()
	opts := &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: tr},
		HTTPHeader:      d.Header,
		CompressionMode: websocket.CompressionDisabled,
	}
	if !d.NoSubprotocol {
		opts.Subprotocols = []string{Subprotocol}
	}
	ws, resp, err := websocket.Dial(ctx, rawURL, opts)
	if err != nil {
		if resp != nil {
			return nil, &DialError{Status: resp.StatusCode, err: err}
		}
		return nil, err
	}
	mu.Lock()
	c := raw
	mu.Unlock()
	if c == nil {
		ws.CloseNow()
		return nil, errors.New("rtmpws: no socket under the WebSocket")
	}
	return newConn(ws, c, nil), nil
}

// DialFunc returns a dial function for rtmp/client's Options.Dial: it
// opens ws://addr/rtmp, or wss://addr/rtmp when secure. The RTMP URL the
// client connects with (its tcUrl) may then say rtmpws://host:port/app.
func (d *Dialer) DialFunc(secure bool) func(ctx context.Context, addr string) (net.Conn, error) {
	scheme := "ws"
	if secure {
		scheme = "wss"
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := d.Dial(ctx, scheme+"://"+addr+Path)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// DialError is a refused upgrade: the server's HTTP status.
type DialError struct {
	Status int
	err    error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("rtmpws: upgrade refused (HTTP %d): %v", e.Status, e.err)
}
func (e *DialError) Unwrap() error { return e.err }
