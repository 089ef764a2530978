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
// Each accepted WebSocket becomes a Conn, a net.Conn with real deadlines
// (a read deadline that passes leaves the connection usable, as on a
// socket), handed to a tunnel.ConnHandler with the protocol name
// "rtmpws", or "rtmpwss" when the request came over TLS (directly, or a
// trusted proxy said so with X-Forwarded-Proto or Forwarded proto=).
//
// Where each piece lives:
//
//   - handler.go: Handler, its Config (origins, keepalive, frame limit)
//     and the upgrade.
//   - conn.go: Conn, the net.Conn over a WebSocket: its reader goroutine,
//     keepalive pings and bounded close.
//   - deadline.go: one direction's deadline.
//   - dial.go: Dial and Dialer, the client side.
package rtmpws
