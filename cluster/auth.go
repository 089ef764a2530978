package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"

	"github.com/rtmphub/rtmphub/session"
)

// Pulls between hubs authenticate with the cluster's shared secret: the
// puller puts its node name, an expiry and an HMAC-SHA256 over them and
// what it asks for in the connect URL's query (for connect) and in the
// stream name's query (for play). The origin's authorizer (Authorizer)
// accepts a valid one in place of its own checks: the edge authorized
// its readers itself. Without a secret no pull token is made or accepted.

const (
	qNode    = "cluster_node"
	qExpires = "cluster_expires"
	qToken   = "cluster_token"
)

// tokenLife is how long a pull token is valid (it is made for each
// attempt).
const tokenLife = 5 * time.Minute

func sign(secret []byte, node string, action session.AuthAction, app, inst, stream string, exp int64) string {
	m := hmac.New(sha256.New, secret)
	for _, s := range []string{"rtmphub-pull", node, string(action), app, inst, stream, strconv.FormatInt(exp, 10)} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// pullQuery is the query a pull by node carries for action.
func pullQuery(secret []byte, node string, action session.AuthAction, id StreamID, now time.Time) string {
	if len(secret) == 0 {
		return ""
	}
	stream := id.Stream
	if action == session.AuthConnect {
		stream = ""
	}
	exp := now.Add(tokenLife).Unix()
	v := url.Values{}
	v.Set(qNode, node)
	v.Set(qExpires, strconv.FormatInt(exp, 10))
	v.Set(qToken, sign(secret, node, action, id.App, id.Instance, stream, exp))
	return v.Encode()
}

// isPull reports whether a query claims to be a pull from another hub
// (valid or not: a query that claims it is never pulled on).
func isPull(query string) bool {
	q, _ := url.ParseQuery(query)
	return q.Get(qToken) != ""
}

// validPull reports whether req carries a valid pull token.
func validPull(secret []byte, req session.AuthRequest, now time.Time) bool {
	if len(secret) == 0 || (req.Action != session.AuthConnect && req.Action != session.AuthPlay) {
		return false
	}
	q, _ := url.ParseQuery(req.Query)
	tok, node := q.Get(qToken), q.Get(qNode)
	exp, err := strconv.ParseInt(q.Get(qExpires), 10, 64)
	if tok == "" || node == "" || err != nil || now.Unix() > exp {
		return false
	}
	stream := req.Stream
	if req.Action == session.AuthConnect {
		stream = ""
	}
	want := sign(secret, node, req.Action, req.App, req.Instance, stream, exp)
	return hmac.Equal([]byte(tok), []byte(want))
}

// Authorizer wraps the hub's authorizer (nil: none): a connect or play
// with a valid pull token from another hub is allowed; everything else
// is asked of next as before.
func (n *Node) Authorizer(next session.Authorizer) session.Authorizer {
	if len(n.secret) == 0 {
		return next
	}
	return func(ctx context.Context, req session.AuthRequest) error {
		if validPull(n.secret, req, time.Now()) {
			return nil
		}
		if next == nil {
			return nil
		}
		return next(ctx, req)
	}
}

// Relay reports whether a play's query is a valid pull of the stream by
// another hub (see session.Cluster): its socket keeps TCP_NODELAY.
func (n *Node) Relay(app, instance, stream, query string) bool {
	return validPull(n.secret, session.AuthRequest{Action: session.AuthPlay, App: app, Instance: instance,
		Stream: stream, Query: query}, time.Now())
}
