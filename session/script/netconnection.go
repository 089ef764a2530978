package script

import (
	"context"
	"errors"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Server-to-server NetConnection: a script connects to another RTMP
// server (another rtmphub, or this one) and calls methods there. Each
// NetConnection has one goroutine that owns its rtmp/client connection and
// runs its requests in order; results come back to the script's loop as
// onStatus events and Responder calls. Calls the remote server makes to
// this connection are not handled.

const (
	ncQueue       = 256
	maxNetConns   = 256 // per instance
	ncDialTimeout = 10 * time.Second
	ncCallTimeout = 30 * time.Second
)

type netConn struct {
	a      *App
	obj    *goja.Object
	reqs   chan func(*client.Conn) // nil conn: connecting
	cancel context.CancelFunc
	ctx    context.Context
	closed bool // loop goroutine
	open   bool // loop goroutine: connected as far as the script knows
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

// status posts obj.onStatus(info) to the loop.
func (nc *netConn) status(level, code, desc string, connected *bool) {
	err := nc.a.l.postWait(func() {
		if connected != nil {
			nc.open = *connected && !nc.closed
			_ = nc.obj.Set("isConnected", nc.open)
		}
		fn, ok := goja.AssertFunction(nc.obj.Get("onStatus"))
		if !ok {
			return
		}
		info := nc.a.vm.NewObject()
		_ = info.Set("level", level)
		_ = info.Set("code", code)
		_ = info.Set("description", desc)
		if _, err := fn(nc.obj, info); err != nil {
			nc.a.scriptError("NetConnection.onStatus", err)
		}
	}, 5*time.Second)
	if err != nil {
		nc.a.log.Warn("NetConnection.onStatus not run", "code", code, "err", err)
	}
}

func (nc *netConn) connect(call goja.FunctionCall) goja.Value {
	vm := nc.a.vm
	if nc.reqs != nil && nc.ctx.Err() == nil {
		panic(vm.NewTypeError("NetConnection already connected; close it first"))
	}
	nc.closed = false
	url := call.Argument(0).String()
	var args []any
	if len(call.Arguments) > 1 {
		args = amfArgs(vm, call.Arguments[1:])
	}
	_ = nc.obj.Set("uri", url)
	nc.ctx, nc.cancel = context.WithCancel(context.Background())
	nc.reqs = make(chan func(*client.Conn), ncQueue)
	go nc.run(url, args)
	return vm.ToValue(true)
}

// run is the connection's goroutine.
func (nc *netConn) run(url string, args []any) {
	defer nc.cancel()
	dctx, cancel := context.WithTimeout(nc.ctx, ncDialTimeout)
	c, err := client.Dial(dctx, url, client.Options{FlashVer: "FMSc/1.0", ConnectArgs: args})
	cancel()
	f := false
	if err != nil {
		var se *client.StatusError
		if errors.As(err, &se) {
			nc.status("error", se.Code, se.Description, &f)
		} else {
			nc.status("error", "NetConnection.Connect.Failed", err.Error(), &f)
		}
		nc.drain()
		return
	}
	defer c.Close()
	t := true
	nc.status("status", "NetConnection.Connect.Success", "Connection succeeded.", &t)
	for {
		select {
		case req := <-nc.reqs:
			req(c)
		case <-nc.ctx.Done():
			nc.status("status", "NetConnection.Connect.Closed", "Connection closed.", &f)
			nc.drain()
			return
		}
	}
}

// drain fails the requests still queued.
func (nc *netConn) drain() {
	for {
		select {
		case req := <-nc.reqs:
			req(nil)
		default:
			return
		}
	}
}

func (nc *netConn) call(call goja.FunctionCall) goja.Value {
	vm := nc.a.vm
	if nc.reqs == nil || nc.closed {
		return vm.ToValue(false)
	}
	method := call.Argument(0).String()
	resp, _ := call.Argument(1).(*goja.Object)
	var args []any
	if len(call.Arguments) > 2 {
		args = amfArgs(vm, call.Arguments[2:])
	}
	req := func(c *client.Conn) {
		var res any
		var err error
		if c == nil {
			err = errors.New("NetConnection closed")
		} else {
			ctx, cancel := context.WithTimeout(nc.ctx, ncCallTimeout)
			var r *message.Command
			r, err = c.Call(ctx, method, args...)
			cancel()
			if err == nil {
				res = r.Arg(0)
			}
		}
		if resp == nil {
			return
		}
		perr := nc.a.l.postWait(func() { nc.a.respondRemote(resp, res, err) }, 5*time.Second)
		if perr != nil {
			nc.a.log.Warn("NetConnection responder not run", "method", method, "err", perr)
		}
	}
	select {
	case nc.reqs <- req:
		return vm.ToValue(true)
	default:
		panic(vm.NewGoError(errors.New("NetConnection: too many calls waiting")))
	}
}

func (nc *netConn) close(goja.FunctionCall) goja.Value {
	if nc.reqs != nil && !nc.closed {
		nc.closed = true
		nc.cancel()
	}
	for i, x := range nc.a.ncs {
		if x == nc {
			nc.a.ncs = append(nc.a.ncs[:i], nc.a.ncs[i+1:]...)
			break
		}
	}
	return goja.Undefined()
}

// respondRemote gives a remote server's answer to a Responder.
func (a *App) respondRemote(resp *goja.Object, res any, err error) {
	var se *client.StatusError
	if errors.As(err, &se) {
		o := a.vm.NewObject()
		_ = o.Set("level", "error")
		_ = o.Set("code", se.Code)
		_ = o.Set("description", se.Description)
		a.callResponder(resp, "onStatus", o)
		return
	}
	a.respond(resp, res, err)
}

func (a *App) callResponder(resp *goja.Object, name string, arg goja.Value) {
	if fn, ok := goja.AssertFunction(resp.Get(name)); ok {
		if _, e := fn(resp, arg); e != nil {
			a.scriptError("Responder."+name, e)
		}
	}
}
