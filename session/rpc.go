package session

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Application receives the calls clients make with NetConnection.call that
// the core does not answer itself. Scripts (main.asc) implement it, as can
// Go code embedding the server. Call runs on the calling client's reader
// goroutine, so calls of one client are handled in order; a method that
// must wait (for instance for the client's answer to a server-to-client
// call) returns an Async value instead of blocking.
//
// The result goes back as _result; an error as _error: ErrMethodNotFound
// gives NetConnection.Call.Failed naming the method, a *CallError its own
// code and description, any other error NetConnection.Call.Failed with the
// error's text.
type Application interface {
	Call(c *Client, method string, args []any) (any, error)
}

// ErrMethodNotFound is returned by an Application that has no such method.
var ErrMethodNotFound = errors.New("method not found")

// CallError is a failed call as the client sees it: the info object of the
// _error reply. Application, when set, is sent as the info object's
// "application" member, as FMS does for script-thrown objects.
type CallError struct {
	Code        string // default NetConnection.Call.Failed
	Description string
	Application any
}

func (e *CallError) Error() string { return e.code() + ": " + e.Description }

func (e *CallError) code() string {
	if e.Code == "" {
		return "NetConnection.Call.Failed"
	}
	return e.Code
}

// Async is a result that is not known yet: the core calls it once, on the
// client's reader goroutine, with a reply function that may be called from
// any goroutine, once (later calls are ignored).
type Async func(reply func(result any, err error))

// HandlerFunc is one method of a Handlers application.
type HandlerFunc func(c *Client, args []any) (any, error)

// Handlers is an Application made of a method table.
type Handlers map[string]HandlerFunc

// Call runs the method's handler, or returns ErrMethodNotFound.
func (h Handlers) Call(c *Client, method string, args []any) (any, error) {
	fn := h[method]
	if fn == nil {
		return nil, ErrMethodNotFound
	}
	return fn(c, args)
}

// Instance returns the application instance the client is connected to
// (nil before connect).
func (c *Client) Instance() *Instance { return c.inst }

// AMF3 reports whether the client speaks AMF3 (objectEncoding 3).
func (c *Client) AMF3() bool { return c.amf3 }

// invoke hands a call nobody in the core answers to the instance's
// application.
func (c *Client) invoke(cmd *message.Command) {
	if owner := c.appOwnerNow(); owner != "" {
		c.forwardCommand(owner, cmd) // another hub runs the application
		return
	}
	app := c.inst.application()
	if app == nil {
		c.sendError(cmd.TransactionID, "NetConnection.Call.Failed", fmt.Sprintf("Method not found (%s).", cmd.Name))
		return
	}
	res, err := c.safeCall(app, cmd.Name, cmd.Args)
	if a, ok := res.(Async); ok && err == nil {
		var once sync.Once
		c.idleCall(+1) // in flight until answered (idle.go)
		a(func(r any, err error) {
			once.Do(func() {
				c.reply(cmd, r, err)
				c.idleCall(-1)
			})
		})
		return
	}
	c.reply(cmd, res, err)
}

// safeCall calls the application, turning a panic in it into a failed
// call: an application is user code and must not take the server down.
func (c *Client) safeCall(app Application, method string, args []any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("application panicked in a call", "method", method, "panic", fmt.Sprint(r))
			res, err = nil, &CallError{Description: "Application error."}
		}
	}()
	return app.Call(c, method, args)
}

// reply answers call cmd with its result or error.
func (c *Client) reply(cmd *message.Command, res any, err error) {
	if err == nil {
		c.sendResult(cmd.TransactionID, res)
		return
	}
	if cmd.TransactionID == 0 {
		c.log.Debug("call failed", "method", cmd.Name, "err", err.Error())
		return
	}
	var ce *CallError
	switch {
	case errors.Is(err, ErrMethodNotFound):
		c.sendError(cmd.TransactionID, "NetConnection.Call.Failed", fmt.Sprintf("Method not found (%s).", cmd.Name))
	case errors.As(err, &ce):
		o := info(levelError, ce.code(), ce.Description)
		if ce.Application != nil {
			o = append(o, amf.Property{Key: "application", Value: ce.Application})
		}
		c.sendCommand(0, &message.Command{Name: "_error", TransactionID: cmd.TransactionID, Args: []any{o}})
	default:
		c.sendError(cmd.TransactionID, "NetConnection.Call.Failed", err.Error())
	}
}

// --- server → client calls ---

// ErrCallTimeout is given to a responder when the client did not answer in
// time; ErrClientClosed when it disconnected first; ErrTooManyCalls when
// too many calls to it are outstanding.
var (
	ErrCallTimeout  = errors.New("session: call timed out")
	ErrClientClosed = errors.New("session: client disconnected")
	ErrTooManyCalls = errors.New("session: too many outstanding calls")
)

// RemoteError is a client's _error answer to a server-to-client call.
type RemoteError struct {
	Info any // the client's info object, usually an amf.Object
}

func (e *RemoteError) Error() string {
	if o, ok := e.Info.(amf.Object); ok {
		code, _ := o.GetString("code")
		desc, _ := o.GetString("description")
		return fmt.Sprintf("client error: %s %s", code, desc)
	}
	return fmt.Sprintf("client error: %v", e.Info)
}

// maxOutstandingCalls bounds the server-to-client calls awaiting an answer
// on one connection.
const maxOutstandingCalls = 1024

// rpcState tracks the server's calls to one client.
type rpcState struct {
	mu      sync.Mutex
	next    float64
	pending map[float64]*pendingCall
	closed  bool
}

type pendingCall struct {
	resp  func(any, error)
	timer *time.Timer
}

// Call calls method on the client. With a nil resp it is fire-and-forget
// (transaction id 0); otherwise resp gets the client's _result value, a
// *RemoteError for its _error, ErrCallTimeout after the configured call
// timeout, or ErrClientClosed. resp runs once, on some other goroutine
// than the caller's (never with the caller's locks held), and must not
// block for long.
func (c *Client) Call(method string, args []any, resp func(result any, err error)) {
	if resp == nil {
		c.sendCommand(0, &message.Command{Name: method, Args: args})
		return
	}
	r := &c.rpc
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		go resp(nil, ErrClientClosed)
		return
	}
	if len(r.pending) >= maxOutstandingCalls {
		r.mu.Unlock()
		go resp(nil, ErrTooManyCalls)
		return
	}
	if r.pending == nil {
		r.pending = make(map[float64]*pendingCall)
	}
	if r.next == 0 {
		r.next = 1 // a remote client's start higher (remote.go)
	}
	// Transaction id 1 is left alone: some clients (python-librtmp) take
	// any invoke with id 1 for their connect reply.
	r.next++
	id := r.next
	p := &pendingCall{resp: resp}
	r.pending[id] = p
	c.idleCall(+1) // ended by finishCall or resolve (idle.go)
	p.timer = time.AfterFunc(c.srv.cfg.CallTimeout, func() { c.finishCall(id, nil, ErrCallTimeout) })
	r.mu.Unlock()
	c.sendCommand(0, &message.Command{Name: method, TransactionID: id, Args: args})
}

// finishCall completes outstanding call id, if it still is.
func (c *Client) finishCall(id float64, res any, err error) bool {
	r := &c.rpc
	r.mu.Lock()
	p := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if p == nil {
		return false
	}
	p.timer.Stop()
	c.idleCall(-1)
	p.resp(res, err)
	return true
}

// resolve takes a client's _result or _error to a server call.
func (c *Client) resolve(cmd *message.Command) {
	var res any
	var err error
	if cmd.Name == "_error" {
		err = &RemoteError{Info: cmd.Arg(0)}
	} else {
		res = cmd.Arg(0)
	}
	// The responder runs off the reader goroutine so that it may call
	// into the client again (or wait) without blocking its reads.
	r := &c.rpc
	r.mu.Lock()
	p := r.pending[cmd.TransactionID]
	delete(r.pending, cmd.TransactionID)
	r.mu.Unlock()
	if p == nil {
		if owner := c.appOwnerNow(); owner != "" && cmd.TransactionID >= remoteCallBase {
			c.forwardCommand(owner, cmd) // an answer to the owner's application
		}
		return // late (timed out) or never asked: ignored
	}
	p.timer.Stop()
	c.idleCall(-1)
	go p.resp(res, err)
}

// closeCalls fails every outstanding call when the client goes away.
func (c *Client) closeCalls() {
	r := &c.rpc
	r.mu.Lock()
	r.closed = true
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, p := range pending {
		p.timer.Stop()
		p.resp(nil, ErrClientClosed)
	}
}

// --- instance ---

// application returns the instance's application, nil if none.
func (in *Instance) application() Application {
	in.applMu.Lock()
	defer in.applMu.Unlock()
	return in.appl
}

// Clients returns the connected clients of the instance.
func (in *Instance) Clients() []*Client {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*Client, 0, len(in.clients))
	for _, c := range in.clients {
		out = append(out, c)
	}
	return out
}

// Broadcast calls method (fire-and-forget) on every client of the
// instance. The message is encoded once per object encoding and shared.
func (in *Instance) Broadcast(method string, args ...any) error {
	cmd := &message.Command{Name: method, Args: args}
	var enc [2]*message.Message
	for i, amf3 := range []bool{false, true} {
		typ, p, err := message.EncodeCommand(cmd, amf3)
		if err != nil {
			return fmt.Errorf("broadcast %s: %w", method, err)
		}
		enc[i] = &message.Message{Type: typ, ChunkStreamID: message.CSIDCommand, Payload: p}
	}
	for _, c := range in.Clients() {
		if c.amf3 {
			c.send(*enc[1])
		} else {
			c.send(*enc[0])
		}
	}
	return nil
}
