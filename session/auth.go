package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Authorization hooks: the core asks Config.Authorize before accepting a
// connect, a publish or a play. The hook runs on the asking client's
// reader goroutine, so a slow answer holds up that client only; it is
// bounded by Config.AuthTimeout.

// AuthAction is what a client asks for.
type AuthAction string

const (
	AuthConnect AuthAction = "connect"
	AuthPublish AuthAction = "publish"
	AuthPlay    AuthAction = "play"
)

// AuthRequest describes a request to authorize.
type AuthRequest struct {
	Action   AuthAction `json:"action"`
	ClientID uint64     `json:"client_id"`
	IP       string     `json:"ip"`
	Protocol string     `json:"protocol"`
	App      string     `json:"app"`
	Instance string     `json:"instance"`
	// Stream is the stream name without its query ("" on connect).
	Stream string `json:"stream,omitempty"`
	// PublishType is live, record or append (publish only).
	PublishType string `json:"publish_type,omitempty"`
	// Query is the stream name's query string on publish and play, the
	// connect URL's otherwise.
	Query string `json:"query"`
	// ConnectQuery is the query string of the connect URL (tcUrl).
	ConnectQuery string `json:"connect_query,omitempty"`
	TCURL        string `json:"tc_url,omitempty"`
	PageURL      string `json:"page_url,omitempty"`
	SWFURL       string `json:"swf_url,omitempty"`
	FlashVer     string `json:"flash_ver,omitempty"`
}

// Authorizer decides on a request: nil allows it, an error denies it. A
// *DenyError's Description is what the client is told; any other error is
// a failure to decide (see FailOpen in the callers that wrap).
type Authorizer func(ctx context.Context, req AuthRequest) error

// DenyError is a decided denial; Description goes to the client in its
// onStatus or _error.
type DenyError struct{ Description string }

func (e *DenyError) Error() string { return "denied: " + e.Description }

// ChainAuthorizers allows a request only when every non-nil authorizer
// allows it, asked in order.
func ChainAuthorizers(as ...Authorizer) Authorizer {
	var list []Authorizer
	for _, a := range as {
		if a != nil {
			list = append(list, a)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return func(ctx context.Context, req AuthRequest) error {
		for _, a := range list {
			if err := a(ctx, req); err != nil {
				return err
			}
		}
		return nil
	}
}

// TokenAuthorizer checks signed tokens on publish and play (connect is
// allowed: it names no stream). The stream's query, or else the connect
// URL's, carries token and expires:
//
//	token = hex(HMAC-SHA256(secret, app + "/" + stream + "/" + expires))
//
// where expires is a Unix time in seconds, after which the token is
// refused. now is time.Now when nil.
func TokenAuthorizer(secret []byte, now func() time.Time) Authorizer {
	if now == nil {
		now = time.Now
	}
	return func(_ context.Context, req AuthRequest) error {
		if req.Action == AuthConnect {
			return nil
		}
		q, _ := url.ParseQuery(req.Query)
		if q.Get("token") == "" {
			q, _ = url.ParseQuery(req.ConnectQuery)
		}
		tok, exp := q.Get("token"), q.Get("expires")
		if tok == "" || exp == "" {
			return &DenyError{"Missing token."}
		}
		e, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return &DenyError{"Bad token expiry."}
		}
		if now().Unix() > e {
			return &DenyError{"Token expired."}
		}
		got, err := hex.DecodeString(tok)
		if err != nil || !hmac.Equal(got, SignToken(secret, req.App, req.Stream, e)) {
			return &DenyError{"Bad token."}
		}
		return nil
	}
}

// SignToken returns the HMAC-SHA256 of app/stream/expires under secret;
// its hex form is the token TokenAuthorizer accepts.
func SignToken(secret []byte, app, stream string, expires int64) []byte {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s/%s/%d", app, stream, expires)
	return m.Sum(nil)
}

// authorize asks the configured authorizer about a request of c and
// returns the description to send the client when it is denied ("" when
// allowed).
func (c *Client) authorize(req AuthRequest) string {
	a := c.srv.cfg.Authorize
	if a == nil {
		return ""
	}
	req.ClientID, req.IP, req.Protocol = c.id, c.ip, c.info.Protocol
	req.TCURL, req.PageURL, req.SWFURL, req.FlashVer, req.ConnectQuery = c.tcURL, c.pageURL, c.swfURL, c.agent, c.query
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.AuthTimeout)
	defer cancel()
	err := a(ctx, req)
	if err == nil {
		return ""
	}
	c.srv.stats.AuthDenied.Add(1)
	var de *DenyError
	desc := "Authorization failed."
	if errors.As(err, &de) && de.Description != "" {
		desc = de.Description
	}
	c.log.Info("authorization denied", "action", string(req.Action), "stream", req.Stream, "err", err.Error())
	return desc
}

// connIP is the address a connection is counted under.
func connIP(info ConnInfo, addr net.Addr) string {
	if info.RemoteIP != "" {
		return info.RemoteIP
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

// admitIPLocked counts a connection from ip, or refuses it when ip has
// Config.MaxConnectionsPerIP already. s.mu is held.
func (s *Server) admitIPLocked(ip string) error {
	limit := s.cfg.MaxConnectionsPerIP
	if limit <= 0 {
		return nil
	}
	if n := s.perIP[ip]; n >= limit {
		s.stats.Rejected.Add(1)
		return fmt.Errorf("too many connections from %s (%d, limit %d)", ip, n, limit)
	}
	s.perIP[ip]++
	return nil
}

func (s *Server) releaseIP(ip string) {
	if s.cfg.MaxConnectionsPerIP <= 0 {
		return
	}
	s.mu.Lock()
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
	} else {
		s.perIP[ip]--
	}
	s.mu.Unlock()
}
