package script

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Server-to-server NetConnection: a script connects to another RTMP
// server (another rtmphub, or this one), calls methods there, and answers
// the calls the remote server makes: a method defined on the NetConnection
// object is called with the call's arguments and its return value (or
// thrown error) is the reply, as on FMS. Each NetConnection has a writer
// goroutine that owns the connection and runs its requests in order, and
// a reader goroutine that reads what the remote server sends; results,
// remote calls and status events come back to the script's loop.

const (
	ncQueue       = 256
	maxNetConns   = 256 // per instance
	ncDialTimeout = 10 * time.Second
	ncCallTimeout = 30 * time.Second
	ncMaxPending  = 1024 // calls waiting for their answer
)

type netConn struct {
	a      *App
	obj    *goja.Object
	cur    *ncConn // loop goroutine: the latest connection
	closed bool    // loop goroutine
	open   bool    // loop goroutine: connected as far as the script knows
}

// ncConn is one connection of a NetConnection (connect starts a new one).
type ncConn struct {
	nc     *netConn
	reqs   chan func(*client.Conn) // nil conn: the connection is gone
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // calls waiting for their answer
	pending map[float64]func(res *message.Command, err error)
	txid    float64
}

// ncMethods are the NetConnection's own members, which the remote server
// may not call.
var ncMethods = map[string]bool{
	"connect": true, "call": true, "close": true, "onStatus": true, "isConnected": true, "uri": true,
	"constructor": true, "toString": true, "valueOf": true, "hasOwnProperty": true,
}

func (a *App) setupNetConnection() {
	vm := a.vm
	ctor := func(call goja.ConstructorCall) *goja.Object {
		if len(a.ncs) >= maxNetConns {
			panic(vm.NewGoError(errors.New("too many NetConnections")))
		}
		nc := &netConn{a: a, obj: call.This}
		a.ncs = append(a.ncs, nc)
		_ = call.This.Set("isConnected", false)
		_ = call.This.Set("uri", goja.Null())
		_ = call.This.Set("connect", nc.connect)
		_ = call.This.Set("call", nc.call)
		_ = call.This.Set("close", nc.close)
		return nil
	}
	if err := vm.Set("NetConnection", ctor); err != nil {
		panic(err)
	}
}

// status posts obj.onStatus(info) to the loop (application.onStatus when
// the object has none); connected, when set, is what isConnected becomes
// (unless a later connect replaced conn).
func (nc *netConn) status(conn *ncConn, level, code, desc string, connected *bool) {
	err := nc.a.l.postWait(func() {
		if connected != nil && nc.cur == conn {
			nc.open = *connected && !nc.closed
			_ = nc.obj.Set("isConnected", nc.open)
		}
		info := nc.a.infoObject(level, code, desc, "")
		fn, ok := goja.AssertFunction(nc.obj.Get("onStatus"))
		if !ok {
			nc.a.appStatus(info)
			return
		}
		if _, err := fn(nc.obj, info); err != nil {
			nc.a.scriptError("NetConnection.onStatus", err)
		}
	}, 5*time.Second)
	if err != nil && !errors.Is(err, errStopped) {
		nc.a.log.Warn("NetConnection.onStatus not run", "code", code, "err", err)
	}
}

func (nc *netConn) connect(call goja.FunctionCall) goja.Value {
	vm := nc.a.vm
	if nc.cur != nil && nc.cur.ctx.Err() == nil {
		panic(vm.NewTypeError("NetConnection already connected; close it first"))
	}
	nc.closed = false
	url := call.Argument(0).String()
	var args []any
	if len(call.Arguments) > 1 {
		args = amfArgs(vm, call.Arguments[1:])
	}
	_ = nc.obj.Set("uri", url)
	conn := &ncConn{nc: nc, reqs: make(chan func(*client.Conn), ncQueue),
		pending: make(map[float64]func(*message.Command, error)), txid: 1 /* connect's */}
	conn.ctx, conn.cancel = context.WithCancel(context.Background())
	nc.cur = conn
	go conn.run(url, args)
	return vm.ToValue(true)
}

// run is the connection's writer goroutine.
func (conn *ncConn) run(url string, args []any) {
	nc := conn.nc
	defer conn.cancel()
	dctx, cancel := context.WithTimeout(conn.ctx, ncDialTimeout)
	c, err := client.Dial(dctx, url, client.Options{FlashVer: "FMSc/1.0", ConnectArgs: args})
	cancel()
	f := false
	if err != nil {
		var se *client.StatusError
		if errors.As(err, &se) {
			nc.status(conn, "error", se.Code, se.Description, &f)
		} else {
			nc.status(conn, "error", "NetConnection.Connect.Failed", err.Error(), &f)
		}
		conn.drain()
		return
	}
	t := true
	nc.status(conn, "status", "NetConnection.Connect.Success", "Connection succeeded.", &t)
	readDone := make(chan error, 1)
	go func() { readDone <- conn.read(c) }()
	desc := "Connection closed."
	func() {
		for {
			select {
			case req := <-conn.reqs:
				req(c)
			case <-conn.ctx.Done():
				return
			case err := <-readDone:
				desc = "Connection closed by the server (" + err.Error() + ")."
				readDone = nil
				return
			}
		}
	}()
	c.Close()
	if readDone != nil {
		<-readDone // the reader ends on the closed connection
	}
	conn.cancel()
	conn.failPending(errors.New("NetConnection closed"))
	nc.status(conn, "status", "NetConnection.Connect.Closed", desc, &f)
	conn.drain()
}

// drain fails the requests still queued.
func (conn *ncConn) drain() {
	for {
		select {
		case req := <-conn.reqs:
			req(nil)
		default:
			return
		}
	}
}

func (conn *ncConn) failPending(err error) {
	conn.mu.Lock()
	p := conn.pending
	conn.pending = make(map[float64]func(*message.Command, error))
	conn.mu.Unlock()
	for _, fn := range p {
		fn(nil, err)
	}
}

// take removes and returns the waiting call id.
func (conn *ncConn) take(id float64) func(*message.Command, error) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	fn := conn.pending[id]
	delete(conn.pending, id)
	return fn
}

// read is the connection's reader goroutine: answers to the script's
// calls, the remote server's calls and its status events.
func (conn *ncConn) read(c *client.Conn) error {
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return err
		}
		switch m.Type {
		case message.TypeUserControl:
			if uc, err := message.DecodeUserControl(m.Payload); err == nil && uc.Event == message.UCPingRequest {
				pong := *message.UserControl{Event: message.UCPingResponse, StreamID: uc.StreamID}.Message()
				if err := c.WriteMessages([]message.Message{pong}); err != nil {
					return err
				}
			}
			continue
		case message.TypeCommandAMF0, message.TypeCommandAMF3:
		default:
			continue
		}
		cmd, err := message.DecodeCommand(m)
		if err != nil {
			continue
		}
		switch cmd.Name {
		case "_result", "_error":
			if fn := conn.take(cmd.TransactionID); fn != nil {
				fn(cmd, nil)
			}
		case "onStatus":
			if m.StreamID != 0 {
				continue
			}
			info, _ := cmd.Arg(0).(amf.Object)
			level, _ := info.GetString("level")
			code, _ := info.GetString("code")
			desc, _ := info.GetString("description")
			conn.nc.status(conn, level, code, desc, nil)
		default:
			if m.StreamID == 0 {
				conn.remoteCall(cmd)
			}
		}
	}
}

// remoteCall runs a call from the remote server on the loop: the method
// of that name on the NetConnection object; the answer is written by the
// writer goroutine.
func (conn *ncConn) remoteCall(cmd *message.Command) {
	nc := conn.nc
	a := nc.a
	reply := func(name string, val any) {
		if cmd.TransactionID == 0 {
			return
		}
		req := func(c *client.Conn) {
			if c != nil {
				_ = c.WriteCommand(0, &message.Command{Name: name, TransactionID: cmd.TransactionID, Args: []any{val}})
			}
		}
		select {
		case conn.reqs <- req:
		default:
			a.log.Warn("NetConnection: reply to a remote call dropped: too many requests waiting", "method", cmd.Name)
		}
	}
	failed := func(desc string) amf.Object {
		return amf.Object{{Key: "level", Value: "error"}, {Key: "code", Value: "NetConnection.Call.Failed"},
			{Key: "description", Value: desc}}
	}
	err := a.l.post(func() {
		fn, ok := goja.AssertFunction(nc.obj.Get(cmd.Name))
		if !ok || ncMethods[cmd.Name] {
			a.log.Debug("NetConnection: remote call of an undefined method", "method", cmd.Name)
			reply("_error", failed("Method not found ("+cmd.Name+")."))
			return
		}
		v, err := fn(nc.obj, jsArgs(a.vm, cmd.Args)...)
		if err != nil {
			a.scriptError("NetConnection."+cmd.Name, err)
			reply("_error", failed(describe(err)))
			return
		}
		reply("_result", toAMF(a.vm, v))
	})
	if err != nil {
		reply("_error", failed("Application busy."))
	}
}

var errNoAnswer = errors.New("no answer from the remote server in time")

func (nc *netConn) call(call goja.FunctionCall) goja.Value {
	vm := nc.a.vm
	conn := nc.cur
	if conn == nil || nc.closed || conn.ctx.Err() != nil {
		return vm.ToValue(false)
	}
	method := call.Argument(0).String()
	resp, _ := call.Argument(1).(*goja.Object)
	var args []any
	if len(call.Arguments) > 2 {
		args = amfArgs(vm, call.Arguments[2:])
	}
	answer := func(res *message.Command, err error) {
		if resp == nil {
			return
		}
		perr := nc.a.l.postWait(func() { nc.a.respondRemote(resp, res, err) }, 5*time.Second)
		if perr != nil && !errors.Is(perr, errStopped) {
			nc.a.log.Warn("NetConnection responder not run", "method", method, "err", perr)
		}
	}
	req := func(c *client.Conn) {
		if c == nil {
			answer(nil, errors.New("NetConnection closed"))
			return
		}
		id := 0.0 // no answer wanted
		if resp != nil {
			conn.mu.Lock()
			if len(conn.pending) >= ncMaxPending {
				conn.mu.Unlock()
				answer(nil, errors.New("too many calls waiting for an answer"))
				return
			}
			conn.txid++
			id = conn.txid
			timer := time.AfterFunc(ncCallTimeout, func() {
				if fn := conn.take(id); fn != nil {
					fn(nil, errNoAnswer)
				}
			})
			conn.pending[id] = func(res *message.Command, err error) {
				timer.Stop()
				answer(res, err)
			}
			conn.mu.Unlock()
		}
		if err := c.WriteCommand(0, &message.Command{Name: method, TransactionID: id, Args: args}); err != nil {
			if fn := conn.take(id); fn != nil {
				fn(nil, err)
			}
		}
	}
	select {
	case conn.reqs <- req:
		return vm.ToValue(true)
	default:
		panic(vm.NewGoError(errors.New("NetConnection: too many calls waiting")))
	}
}

func (nc *netConn) close(goja.FunctionCall) goja.Value {
	if nc.cur != nil && !nc.closed {
		nc.closed = true
		nc.cur.cancel()
	}
	for i, x := range nc.a.ncs {
		if x == nc {
			nc.a.ncs = append(nc.a.ncs[:i], nc.a.ncs[i+1:]...)
			break
		}
	}
	return goja.Undefined()
}

// respondRemote gives a remote server's answer to a Responder: _result's
// value to onResult, _error's info object to onStatus.
func (a *App) respondRemote(resp *goja.Object, res *message.Command, err error) {
	switch {
	case err != nil:
		a.callResponder(resp, "onStatus", a.infoObject("error", "NetConnection.Call.Failed", err.Error(), ""))
	case res.Name == "_error":
		info := res.Arg(0)
		for _, v := range res.Args {
			if _, ok := v.(amf.Object); ok {
				info = v
				break
			}
		}
		a.callResponder(resp, "onStatus", toJS(a.vm, info))
	default:
		a.callResponder(resp, "onResult", toJS(a.vm, res.Arg(0)))
	}
}

func (a *App) callResponder(resp *goja.Object, name string, arg goja.Value) {
	if fn, ok := goja.AssertFunction(resp.Get(name)); ok {
		if _, e := fn(resp, arg); e != nil {
			a.scriptError("Responder."+name, e)
		}
	}
}
