package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Reloading an application, as FMS's reloadApp: every running instance of
// the application is unloaded at once, so that the next connect starts a
// fresh instance (with the application's current main.asc). The instances
// leave the server's table first, then their clients get
// NetConnection.Connect.AppShutdown and are closed once it is written;
// when they have left (their onDisconnect run), the application is told to
// stop (onAppStop), as when an idle instance unloads.

const (
	// unloadWriteWait bounds how long a client's AppShutdown status may
	// take to be written before the connection is closed anyway.
	unloadWriteWait = 2 * time.Second
	// unloadLeaveWait bounds how long an unload waits for its clients to
	// leave before the application is stopped anyway.
	unloadLeaveWait = 3 * time.Second
)

// ReloadApp unloads every running instance of application app and returns
// how many there were. It returns ErrNotFound when the application has no
// running instance and no folder in the data directory. It waits (a few
// seconds at most) for the instances' clients to be disconnected.
func (s *Server) ReloadApp(app, reason string) (int, error) {
	if app == "" || app == "." || app == ".." || strings.ContainsAny(app, "/\\\x00") {
		return 0, ErrNotFound
	}
	s.mu.Lock()
	var ins []*Instance
	for key, in := range s.instances {
		if in.app == app {
			delete(s.instances, key)
			ins = append(ins, in)
		}
	}
	s.mu.Unlock()
	if len(ins) == 0 {
		if fi, err := os.Stat(filepath.Join(s.cfg.DataDir, app)); err != nil || !fi.IsDir() {
			return 0, ErrNotFound
		}
		return 0, nil
	}
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.unload(reason)
		}()
	}
	wg.Wait()
	return len(ins), nil
}

// unload disconnects the clients of an instance that has left the
// server's table, then stops its application.
func (in *Instance) unload(reason string) {
	log := in.srv.log.With("app", in.app, "instance", in.name)
	clients := in.Clients()
	log.Info("instance unloading", "reason", reason, "clients", len(clients))
	why := errors.New(reason)
	for _, c := range clients {
		c.sendStatus(0, levelError, "NetConnection.Connect.AppShutdown", "The application is shutting down ("+reason+").", "")
		c.closeWhenWritten(why)
	}
	deadline := time.Now().Add(unloadWriteWait)
	for len(in.Clients()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range clients {
		c.close(why) // not written in time
	}
	// Let the clients leave (and the application hear of it) before the
	// application stops.
	deadline = time.Now().Add(unloadLeaveWait)
	for len(in.Clients()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st, ok := in.application().(InstanceStopper); ok {
		st.Stop()
	}
	log.Info("instance stopped", "reason", reason)
}
