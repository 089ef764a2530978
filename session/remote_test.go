package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// elsewhere says another hub ("o") owns every instance but live's, and relays
// nothing: its OpenRemote waits for release, then answers decision.
type elsewhere struct {
	mu       sync.Mutex
	asked    chan struct{}
	release  chan struct{}
	decision session.ConnectDecision
	gone     []uint64
}

func (e *elsewhere) OwnInstance(app, _ string) (string, bool) {
	return "o", app == "live" // live is this hub's
}
func (e *elsewhere) InstanceEnded(string, string) {}
func (e *elsewhere) InstanceOwner(app, _ string) (string, bool) {
	return "o", app == "live"
}
func (e *elsewhere) ForwardSO(string, string, string, session.RemoteSO, message.Message) {
}
func (e *elsewhere) ForwardGone(_, _, _ string, client uint64) {
	e.mu.Lock()
	e.gone = append(e.gone, client)
	e.mu.Unlock()
}
func (e *elsewhere) OpenRemote(string, session.RemoteConnect, time.Duration) (session.ConnectDecision, error) {
	close(e.asked)
	<-e.release
	return e.decision, nil
}
func (e *elsewhere) ForwardCommand(string, string, string, uint64, message.Message) {}
func (e *elsewhere) CloseRemote(string, string, string, uint64)                     {}
func (e *elsewhere) ForwardStream(string, string, string, uint64, string, bool)     {}

// A client whose connect waits for the owner's application while its
// hub reroutes the instance's shared objects (the owner changed), and
// which the owner then refuses, leaves cleanly: its shared objects are
// released at the owner they were pointed at (this was a nil instance
// dereference, a crash of the hub).
func TestRefusedRemoteConnectAfterReroute(t *testing.T) {
	e := &elsewhere{asked: make(chan struct{}), release: make(chan struct{}),
		decision: session.ConnectDecision{Description: "No."}}
	base, srv, _ := startServer(t, session.Config{Owners: e, SORelay: e, AppRelay: e})
	done := make(chan error, 1)
	go func() {
		c, err := sessiontest.TryDial(sessiontest.Ctx(t, 10*time.Second), base+"/chat/room", client.Options{})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	<-e.asked
	srv.SOReroute("chat", "room", false)
	close(e.release)
	var se *client.StatusError
	if err := <-done; !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || se.Description != "No." {
		t.Fatalf("connect: %v", err)
	}
	sessiontest.Eventually(t, 5*time.Second, "released at the owner", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.gone) == 1
	})
	// And the hub still serves.
	c := sessiontest.Dial(t, base+"/live", client.Options{})
	if _, err := c.CreateStream(context.Background()); err != nil {
		t.Fatal(err)
	}
}
