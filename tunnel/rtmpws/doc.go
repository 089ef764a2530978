// Package rtmpws carries RTMP over WebSocket: the server side, an
// http.Handler for the path /rtmp, and a dialer for Go clients.
//
// The wire mapping is the simplest there is: binary frames carry the raw
// RTMP byte stream in both directions, handshake (C0/C1/C2, S0/S1/S2)
// included, and frame boundaries mean nothing. A client may offer the
// subprotocol "rtmp"; the server accepts it when offered and also
// accepts none. A text frame closes the connection with 1003, a frame
// (message) over the size limit with 1009, each with one log line.
//
// Each accepted WebSocket becomes a net.Conn whose deadlines are its
// socket's (a read deadline that passes leaves the connection usable, as
// on a socket), handed to a tunnel.ConnHandler with the protocol name
// "rtmpws", or "rtmpwss" when the request came over TLS (directly, or a
// trusted proxy said so with X-Forwarded-Proto or Forwarded proto=).
//
// Where each piece lives:
//
//   - handler.go: Handler, its Config (origins, keepalive, frame limit),
//     the checks of a request and the client's address and protocol.
//   - server.go: the server's side: the upgrade, and serverConn, which
//     reads and writes the frames itself on the hijacked socket (no
//     goroutine of its own, no copy of what is read), with keepalive
//     pings on a timer and a bounded close handshake.
//   - conn.go: Conn, the client's side over coder/websocket: a reader
//     goroutine keeps answering the server's pings whether or not the
//     RTMP client reads; deadline.go: its deadlines.
//   - dial.go: Dial and Dialer.
package rtmpws
