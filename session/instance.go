package session

import (
	"sync"

	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Instance is a running application instance (rtmp://host/app/instance):
// its clients and its live streams. Streams are scoped to an instance.
type Instance struct {
	srv  *Server
	app  string
	name string

	mu      sync.Mutex
	clients map[uint64]*Client
	streams map[string]*live.Stream

	applMu sync.Mutex
	appl   Application            // rpc.go; under applMu (remote.go starts and stops it)
	so     *sharedobject.Registry // so_client.go
}

func newInstance(s *Server, app, name string, withApp bool) *Instance {
	in := &Instance{srv: s, app: app, name: name, clients: make(map[uint64]*Client), streams: make(map[string]*live.Stream)}
	in.so = sharedobject.NewRegistry(s.soConfig(), app, name, s.log)
	if withApp {
		in.startApplication()
	}
	return in
}

// startApplication starts the instance's application (main.asc), if the
// server has one and it is not running.
func (in *Instance) startApplication() {
	s := in.srv
	if s.cfg.Application == nil {
		return
	}
	in.applMu.Lock()
	if in.appl != nil {
		in.applMu.Unlock()
		return
	}
	a := s.cfg.Application(in.app, in.name)
	in.appl = a
	in.applMu.Unlock()
	if st, ok := a.(InstanceStarter); ok {
		st.Start(in)
	}
}

// stopApplication stops the instance's application, if running (another
// hub owns the instance now and runs it).
func (in *Instance) stopApplication() {
	in.applMu.Lock()
	a := in.appl
	in.appl = nil
	in.applMu.Unlock()
	if st, ok := a.(InstanceStopper); ok {
		st.Stop()
	}
}

// App is the application name; Name the instance name.
func (in *Instance) App() string  { return in.app }
func (in *Instance) Name() string { return in.name }

func (in *Instance) addClient(c *Client) {
	in.mu.Lock()
	in.clients[c.id] = c
	in.mu.Unlock()
}

func (in *Instance) removeClient(c *Client) {
	in.mu.Lock()
	delete(in.clients, c.id)
	in.mu.Unlock()
	in.srv.dropInstanceIfIdle(in)
}

func (in *Instance) idle() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.clients) == 0 && len(in.streams) == 0 && in.so.Len() == 0
}

// withStream runs fn on the live stream called name, created if needed,
// while the instance is locked, so that a stream found unused and removed
// can never be the one fn attaches to. fn may lock the stream.
func (in *Instance) withStream(name string, fn func(*live.Stream)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.streams[name]
	if st == nil {
		st = in.newStream(name)
		in.streams[name] = st
	}
	fn(st)
}

// removeStreamIfUnused forgets a stream with no publisher and no players.
func (in *Instance) removeStreamIfUnused(st *live.Stream) {
	in.mu.Lock()
	if in.streams[st.Name()] == st && st.Unused() {
		delete(in.streams, st.Name())
	}
	in.mu.Unlock()
}
