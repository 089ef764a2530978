package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/vod"
)

// Server is the session core shared by every transport.
type Server struct {
	cfg  Config
	live live.Config // cfg's settings of live streams
	log  *slog.Logger

	nextID atomic.Uint64

	mu        sync.Mutex
	instances map[string]*Instance // key app + "/" + instance
	clients   map[uint64]*Client
	closed    bool
	wg        sync.WaitGroup // one per running client

	stats    Stats
	views    viewState      // admin views (views.go)
	watching watchCounts    // readers attached by Watch (watch.go)
	perIP    map[string]int // connections per client address, when limited

	media *vod.Store // stream files: VOD and recording
	// openWriter opens a recording's file; tests replace it to simulate
	// slow or failing disks.
	openWriter func(path string, appendTo bool, hasAudio, hasVideo bool, meta amf.ECMAArray) (vod.TagWriter, error)
}

// Stats are counters kept for logs, the admin API and metrics.
type Stats struct {
	Connections     atomic.Int64  // clients now
	Accepted        atomic.Uint64 // clients ever
	Rejected        atomic.Uint64 // connections refused (limits, bad input)
	SlowDisconnects atomic.Uint64 // clients dropped for stalled writes or queue overflow
	DroppedMessages atomic.Uint64 // media messages skipped for slow players
	AuthDenied      atomic.Uint64 // connects, publishes and plays refused by Config.Authorize
	BytesIn         atomic.Uint64 // bytes received from clients that have left
	BytesOut        atomic.Uint64 // bytes sent to clients that have left
}

// NewServer returns a core with cfg (zero fields take their defaults)
// logging to log.
func NewServer(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:       cfg.WithDefaults(),
		log:       log,
		instances: make(map[string]*Instance),
		clients:   make(map[uint64]*Client),
		perIP:     make(map[string]int),
	}
	s.live = s.cfg.liveConfig()
	s.views.startedAt = time.Now()
	s.media = vod.New(vod.Config{DataDir: s.cfg.DataDir, MaxFiles: s.cfg.VODIndexCache, Log: log})
	s.openWriter = vod.OpenWriter
	return s
}

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// ErrServerClosed is returned for connections arriving after Shutdown. It
// unwraps to net.ErrClosed.
var ErrServerClosed = fmt.Errorf("session: server closed: %w", net.ErrClosed)

// ServeConn runs one connection carrying chunked RTMP: the handshake, then
// the client session until it ends. It returns when the connection is
// closed; nc is always closed on return.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, info ConnInfo) error {
	conn, log, ip, err := s.accept(nc, &info)
	if err != nil {
		return err
	}
	defer s.release(ip)
	return s.serve(ctx, conn, info, log)
}

// StartConn is ServeConn for a caller that need not wait for the
// connection to end: it runs the handshake on the caller's goroutine and
// returns, and the client session goes on on a goroutine of its own
// (Shutdown waits for it). It returns the handshake's error; nc is closed
// then.
//
// A player's reader goroutine spends its life parked in a read. Parked
// under the frames of the accept loop, the sniffer and ServeConn (about
// 2.4 KiB of stack in use), its stack, grown to 8 KiB by connect and
// play, can never shrink: the runtime halves a stack at a GC only when
// less than a quarter of it (less the 800 bytes it keeps spare) is in use.
// Started here, it parks on about 1.1 KiB and shrinks to 4 KiB.
func (s *Server) StartConn(ctx context.Context, nc net.Conn, info ConnInfo) error {
	conn, log, ip, err := s.accept(nc, &info)
	if err != nil {
		return err
	}
	go s.serveAndRelease(ctx, conn, info, log, ip)
	return nil
}

// serveAndRelease is serve and release on a client's own goroutine, with
// small frames (see StartConn).
func (s *Server) serveAndRelease(ctx context.Context, t Transport, info ConnInfo, log *slog.Logger, ip string) {
	c := s.addClient(t, info, log)
	c.run(ctx)
	s.removeClient(c)
	s.release(ip)
}

// accept admits a connection and runs the server handshake on it; on an
// error nc is closed.
func (s *Server) accept(nc net.Conn, info *ConnInfo) (_ *rtmp.Conn, _ *slog.Logger, ip string, _ error) {
	if info.Protocol == "" {
		info.Protocol = "rtmp"
	}
	log := s.log.With("proto", info.Protocol, "remote", nc.RemoteAddr().String())
	ip = connIP(*info, nc.RemoteAddr())
	if err := s.admit(ip); err != nil {
		nc.Close()
		log.Warn("connection refused", "reason", err.Error())
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	conn, hs, err := rtmp.Accept(nc, s.cfg.MaxMessageSize)
	if err != nil {
		nc.Close()
		s.release(ip)
		s.stats.Rejected.Add(1)
		log.Info("closed", "reason", err.Error())
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Time{})
	log.Debug("handshake done", "digest", hs.Digest, "client_version", fmt.Sprintf("%d.%d.%d.%d", hs.ClientVersion[0], hs.ClientVersion[1], hs.ClientVersion[2], hs.ClientVersion[3]))
	return conn, log, ip, nil
}

// ServeTransport runs a client session on a message transport (one that
// needs no RTMP handshake, such as RoQR).
func (s *Server) ServeTransport(ctx context.Context, t Transport, info ConnInfo) error {
	log := s.log.With("proto", info.Protocol, "remote", t.RemoteAddr().String())
	ip := connIP(info, t.RemoteAddr())
	if err := s.admit(ip); err != nil {
		t.Close()
		log.Warn("connection refused", "reason", err.Error())
		return err
	}
	defer s.release(ip)
	return s.serve(ctx, t, info, log)
}

func (s *Server) admit(ip string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if n := s.stats.Connections.Load(); n >= int64(s.cfg.MaxConnections) {
		s.stats.Rejected.Add(1)
		return fmt.Errorf("too many connections (%d, limit %d)", n, s.cfg.MaxConnections)
	}
	if err := s.admitIPLocked(ip); err != nil {
		return err
	}
	s.stats.Connections.Add(1)
	s.stats.Accepted.Add(1)
	s.wg.Add(1)
	return nil
}

func (s *Server) release(ip string) {
	s.releaseIP(ip)
	s.stats.Connections.Add(-1)
	s.wg.Done()
}

func (s *Server) serve(ctx context.Context, t Transport, info ConnInfo, log *slog.Logger) error {
	c := s.addClient(t, info, log)
	defer s.removeClient(c)
	return c.run(ctx)
}

// addClient makes a client of t and lists it.
func (s *Server) addClient(t Transport, info ConnInfo, log *slog.Logger) *Client {
	c := newClient(s, t, info, log)
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()
	return c
}

func (s *Server) removeClient(c *Client) {
	s.mu.Lock()
	delete(s.clients, c.id)
	s.mu.Unlock()
}

// Shutdown stops accepting clients, disconnects the current ones and waits
// for them to end, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	clients := make([]*Client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	for _, c := range clients {
		if t, ok := c.t.(*remoteTransport); ok {
			// A client of another hub stays there: its hub connects it
			// to the instance's next owner (this hub's leases go).
			t.byHub.Store(true)
		}
		c.close(errors.New("server shutting down"))
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.stopApplications()
		return nil
	case <-ctx.Done():
		s.stopApplications()
		return ctx.Err()
	}
}

// stopApplications tells the applications of the instances still loaded
// (held by streams or shared objects) that the server stops
// (script_hook.go); Stop does not wait.
func (s *Server) stopApplications() {
	for _, in := range s.allInstances() {
		if st, ok := in.application().(InstanceStopper); ok {
			st.Stop()
		}
	}
}

// instance returns the running instance app/inst, starting it if needed.
func (s *Server) instance(app, inst string) *Instance { return s.instanceFor(app, inst, true) }

// instanceFor is instance; withApp false does not start the application
// of an instance it makes (another hub owns it and runs it).
func (s *Server) instanceFor(app, inst string, withApp bool) *Instance {
	key := app + "/" + inst
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[key]
	if in == nil {
		in = newInstance(s, app, inst, withApp)
		s.instances[key] = in
		s.log.Info("instance started", "app", app, "instance", inst)
	}
	return in
}

// dropInstanceIfIdle unloads an instance with no clients and no streams.
func (s *Server) dropInstanceIfIdle(in *Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !in.idle() {
		return
	}
	key := in.app + "/" + in.name
	if s.instances[key] == in {
		delete(s.instances, key)
		s.log.Info("instance stopped", "app", in.app, "instance", in.name)
		if o := s.cfg.Owners; o != nil {
			o.InstanceEnded(in.app, in.name)
		}
		if st, ok := in.application().(InstanceStopper); ok {
			st.Stop()
		}
	}
}
