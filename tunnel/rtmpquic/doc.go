// Package rtmpquic carries RTMP over QUIC, in two mappings that share one
// UDP port, told apart by their TLS application protocol:
//
//   - "rtmp-quic" (ALPN; clients named "rtmpq"): the bytes a TCP
//     connection would carry, RTMP handshake and chunk stream, on one
//     bidirectional QUIC stream per RTMP connection. Listener.Accept
//     yields each as a net.Conn (a *Conn, with working deadlines,
//     CloseWrite and, on the dialer side, Migrate), served like native
//     RTMP; Dial is the client side.
//   - "roqr" (RoQRALPN; clients named "roqr"): RoQR, whole RTMP messages
//     framed on a QUIC stream with no handshake and no chunking, and, when
//     both ends offer QUIC DATAGRAMs, the media a decoder can lose in
//     datagrams. Listener.AcceptRoQR yields a *RoQRConn, a message
//     transport for the session core; DialRoQR is the client side.
//
// The package is named rtmpquic, not quic, because it imports quic-go's
// package quic. It knows nothing of the session core: cmd wires the
// connections it yields to it, or to the gateway. Certificate pins come
// from package tunnel (ClientTLSConfig, Fingerprint), which the bridge's
// TLS dialers share.
//
// Where each piece lives:
//
//   - quic.go: Config and its defaults, Listener (Listen, Accept,
//     AcceptRoQR, Close, Shutdown), Conn (the byte-stream mapping's
//     net.Conn, its migration), Dial and DialRoQR.
//   - cert.go: the self-signed certificate a hub makes for QUIC when none
//     is configured (LoadOrCreateSelfSigned).
//   - roqr.go: the RoQR frame (AppendRoQRFrame, ReadRoQRFrame,
//     ParseRoQRDatagram) and RoQRConn on a stream.
//   - roqr_datagram.go: RoQR's datagram profile: which messages travel in
//     DATAGRAMs, the receiver's merge of datagrams into the stream's
//     order, and its counters (RoQRDatagramStats).
package rtmpquic
