package session

import (
	"net"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Transport is what the core needs of a connection: whole messages in and
// out. ReadMessage is called by one goroutine, WriteMessages by another;
// implementations serialize their own writes. Chunked RTMP (rtmp.Conn) is
// one implementation; RoQR over QUIC is another.
type Transport interface {
	ReadMessage() (*message.Message, error)
	// WriteMessages writes msgs in order, in as few system calls as it
	// can. Payloads are shared and must not be modified.
	WriteMessages(msgs []message.Message) error
	SetReadDeadline(t time.Time) error
	// SetWriteTimeout makes any write that cannot finish within about d
	// fail with a timeout error (net.Error), so a stalled peer is found.
	SetWriteTimeout(d time.Duration)
	Close() error
	RemoteAddr() net.Addr
	BytesRead() uint64
	BytesWritten() uint64
}

// ConnInfo describes how a client reached the server.
type ConnInfo struct {
	// Protocol is the client's protocol as scripts and the admin API see
	// it: "rtmp", "rtmpt", "rtmps", "rtmpts", or a QUIC mapping's name.
	Protocol string
	// RemoteIP overrides the transport's address (a trusted proxy's
	// forwarded address); empty means the transport's.
	RemoteIP string
	// TunnelID is the RTMPT session id, if any.
	TunnelID string
}
