// Package tunnel holds rtmphub's transports: each accepts connections in
// its own way and yields a net.Conn of RTMP bytes (or whole messages) with
// the name of its protocol, for the session core to serve.
//
// Server tells connections apart by their first byte (native RTMP, HTTP,
// TLS) on every port it serves, and turns RTMPT sessions (RTMP tunneled
// over HTTP polling, on fasthttp) into net.Conns keyed on their session
// id, with working deadlines and back-pressure. DialRTMPT is the client
// side. The package knows nothing of the session core: cmd wires the
// conns it yields to it.
//
// RTMP over QUIC (the byte-stream mapping and RoQR) is the subpackage
// rtmpquic; it takes its certificate pins from here (tlspin.go). Serve
// runs its listener's accept loop as it runs a TCP listener's. RTMP over
// WebSocket is the subpackage rtmpws: an http.Handler for /rtmp that cmd
// mounts on the WebListener; ViaTLS and ForwardedTLS tell it whether a
// request came over TLS.
//
// Where each piece lives:
//
//   - listener.go: Serve, the accept loop of a plain listener.
//   - server.go: Server, its Config and Stats, the sniffing of the first
//     byte (sniff.go, peek_*.go), httpConn (an HTTP connection with lazy
//     deadlines) and the fasthttp server's listener.
//   - proxyproto.go, forwarded.go: the client's address behind trusted
//     proxies (PROXY protocol; Forwarded and X-Forwarded-For headers).
//   - limits.go: what an HTTP peer can make the server hold (body growth
//     and budget, head and body timeouts, connections per address), for
//     both the fasthttp and the direct paths.
//   - rtmpt.go: RTMPT on fasthttp (the handler, /open, the session table
//     and its janitor); rtmpt_path.go: the request path grammar.
//   - rtmpt_session.go: an RTMPT session as a net.Conn (sequencing, held
//     polls, replies kept for retries); rtmpt_session_park.go: its side of
//     direct serving (parked polls, polls answered by its writers).
//   - rtmpt_direct.go: RTMPT on plain TCP without the HTTP server
//     (directConn: non-blocking replies, the serving loop, the hand-off of
//     reading to a session's writers; rcvlowat_*.go);
//     rtmpt_request.go: its HTTP/1.x request reader and the writers' idle
//     poll parser.
//   - rtmpt_client.go: DialRTMPT, the client side.
//   - tlspin.go: certificate pins for TLS clients (ClientTLSConfig,
//     Fingerprint), shared by the bridge's rtmps, rtmpts and QUIC dialers.
//   - vconn.go: what the package's virtual connections share (signal,
//     net-style errors); their deadlines are in internal/deadline.
package tunnel
