package session

import (
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/record"
)

// Optional interfaces an Application may implement to follow its
// instance's life, as server-side scripts (main.asc) do. The core checks
// for them with type assertions; a plain Application needs none.

// InstanceStarter is told the instance its Application belongs to, once,
// right after the instance is created. Start must not block: it runs with
// the server's instance table locked.
type InstanceStarter interface {
	Start(in *Instance)
}

// InstanceStopper is told when its instance is unloaded (no clients, no
// streams, no shared objects left), or when the server shuts down. Stop
// may be called more than once and must not block (it may run with the
// server's instance table locked).
type InstanceStopper interface {
	Stop()
}

// ConnectDecision is an application's answer to a connect: Accept, or a
// rejection whose Info (may be nil) is sent to the client as the
// "application" member of NetConnection.Connect.Rejected, as FMS does with
// the object given to rejectConnection.
type ConnectDecision struct {
	Accept      bool
	Info        any
	Description string // the rejection's description ("" for FMS's default)
}

// ConnectHandler decides on connects after the core's own checks and the
// Authorize hook have allowed them. Connect gets the client (already
// identified: id, ip, agent, protocol, page URL) and the connect command's
// extra arguments, and calls decide once, from any goroutine, possibly
// later (a pending connect). The core waits on the client's reader
// goroutine at most Config.CallTimeout, then rejects.
type ConnectHandler interface {
	Connect(c *Client, params []any, decide func(ConnectDecision))
}

// DisconnectHandler is told when an accepted client leaves, and when a
// connect it left pending timed out. It must not block.
type DisconnectHandler interface {
	Disconnect(c *Client)
}

// StreamHandler is told when one of the instance's clients starts and
// stops publishing a live stream (FMS's application.onPublish and
// onUnpublish): notifications, the publication has started. With a
// cluster, the instance's owner is told of the clients of every hub
// (their remote clients, remote.go). It must not block.
type StreamHandler interface {
	Publish(c *Client, name string)
	Unpublish(c *Client, name string)
}

// Agent is the client's flashVer; PageURL its page URL; SWFURL the SWF's.
func (c *Client) Agent() string   { return c.agent }
func (c *Client) PageURL() string { return c.pageURL }
func (c *Client) SWFURL() string  { return c.swfURL }

// TCURL is the URL the client connected to.
func (c *Client) TCURL() string { return c.tcURL }

// askConnect asks the instance's application to decide on c's connect,
// waiting for a pending decision at most the call timeout. It returns ""
// to accept, else the rejection's description and info object.
func (c *Client) askConnect(params []any) (desc string, appInfo any, asked bool) {
	h, ok := c.inst.application().(ConnectHandler)
	if !ok {
		return "", nil, false
	}
	ch := make(chan ConnectDecision, 1)
	func() {
		defer func() {
			if r := recover(); r != nil {
				// Application code: a panic is a rejection, never a crash.
				c.log.Error("application panicked in connect", "panic", r)
				ch <- ConnectDecision{Description: "Application error."}
			}
		}()
		h.Connect(c, params, func(d ConnectDecision) {
			select {
			case ch <- d:
			default: // decided twice: the first answer stands
			}
		})
	}()
	t := time.NewTimer(c.srv.cfg.CallTimeout)
	defer t.Stop()
	var d ConnectDecision
	select {
	case d = <-ch:
	case <-t.C:
		d = ConnectDecision{Description: "Connection timed out waiting for the application."}
		// Let the application forget the client it left pending.
		if dh, ok := h.(DisconnectHandler); ok {
			dh.Disconnect(c)
		}
	}
	if d.Accept {
		return "", nil, true
	}
	if d.Description == "" {
		d.Description = "Connection rejected by the application."
	}
	return d.Description, d.Info, true
}

// rejectInfo is the info object of a connect rejected by the application.
func rejectInfo(desc string, appInfo any) amf.Object {
	o := info(levelError, "NetConnection.Connect.Rejected", desc)
	if appInfo != nil {
		o = append(o, amf.Property{Key: "application", Value: appInfo})
	}
	return o
}

// ServerPublisher publishes a live stream of an instance from the server
// side (a script's Stream): players see it as any live stream. It never
// takes over a client's publication nor is taken over by one.
type ServerPublisher struct {
	in *Instance
	p  *live.Publication

	mu  sync.Mutex
	rec *record.Recorder // Stream.record (script_stream.go)
}

// PublishServer starts publishing live stream name from the server; it
// fails when the stream is being published.
func (in *Instance) PublishServer(name string) (*ServerPublisher, error) {
	var p *live.Publication
	var err error
	in.withStream(name, func(st *live.Stream) {
		p, err = st.Publish(&serverSource{log: in.srv.log}, live.PublishOptions{Type: "live", Pinned: true})
	})
	if err != nil {
		in.removeStreamIfUnusedByName(name)
		return nil, err
	}
	return &ServerPublisher{in: in, p: p}, nil
}

func (in *Instance) removeStreamIfUnusedByName(name string) {
	in.mu.Lock()
	st := in.streams[name]
	in.mu.Unlock()
	if st != nil {
		in.removeStreamIfUnused(st)
	}
}

// Write hands one audio, video or data message to the stream's readers,
// its players and its recording (data: "@setDataFrame" onMetaData is kept
// for readers joining later). It never blocks on a reader. Not safe for
// concurrent use.
func (sp *ServerPublisher) Write(m *message.Message) error {
	sp.p.Write(m)
	return nil
}

// Close ends the publication and its recording: players get
// UnpublishNotify.
func (sp *ServerPublisher) Close() {
	sp.StopRecord()
	sp.p.Close(true)
}
