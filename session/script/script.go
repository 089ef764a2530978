// Package script runs FMS-style server-side application scripts
// (<data>/<app>/main.asc or main.js) with the goja ECMAScript engine.
//
// Each application instance gets its own runtime, owned by one goroutine:
// every callback into the script (connects, calls, disconnects, timers,
// shared object changes, answers to the script's own calls) is posted to
// that goroutine's bounded queue and runs in order. A task that runs longer
// than Config.MaxRun is interrupted; a script error is logged with its file
// and line and never reaches another instance or the server.
package script

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Config configures the script runtime. Zero values mean the defaults.
type Config struct {
	// DataDir holds one folder per application; a folder with a main.asc
	// (or main.js) is a scripted application.
	DataDir string
	// MaxRun interrupts a script callback that runs longer (default 5s).
	MaxRun time.Duration
	// QueueLen bounds the events waiting for an instance's script
	// (default 4096); a call that finds it full fails with "busy".
	QueueLen int
	// Log gets script errors and trace output (default slog.Default()).
	Log *slog.Logger
	// Next gives the Application of an application without a script
	// (may be nil).
	Next func(app, instance string) session.Application
}

// DefaultConfig is the configuration the zero Config stands for: every
// default filled in.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default, the one
// place the defaults live.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.MaxRun <= 0 {
		c.MaxRun = 5 * time.Second
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 4096
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// ScriptFile returns the script of application app in dataDir, "" if it
// has none.
func ScriptFile(dataDir, app string) string {
	for _, n := range []string{"main.asc", "main.js"} {
		p := filepath.Join(dataDir, app, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// Factory returns the session.Config.Application factory: applications
// with a script get a scripted instance, the others cfg.Next's.
func Factory(cfg Config) func(app, instance string) session.Application {
	cfg = cfg.WithDefaults()
	return func(app, instance string) session.Application {
		file := ScriptFile(cfg.DataDir, app)
		if file == "" {
			if cfg.Next != nil {
				return cfg.Next(app, instance)
			}
			return nil
		}
		return newApp(cfg, app, instance, file)
	}
}

// App is one scripted application instance. It implements
// session.Application and the optional lifecycle interfaces.
type App struct {
	cfg  Config
	name string // app/instance, as FMS's application.name
	dir  string
	file string
	log  *slog.Logger
	vm   *goja.Runtime
	l    *loop
	in   *session.Instance

	// loop goroutine only
	loadErr     error
	appObj      *goja.Object
	clientProto *goja.Object
	soProto     *goja.Object
	clients     map[*session.Client]*clientState
	byObj       map[*goja.Object]*clientState
	sos         map[string]*soState
	soByObj     map[*goja.Object]*soState
	ncs         []*netConn
	files       []*jsFile
	streams     map[string]*srvStream
	streamByObj map[*goja.Object]*srvStream
}

type clientState struct {
	c        *session.Client
	obj      *goja.Object
	decide   func(session.ConnectDecision) // set while the connect is undecided
	accepted bool
}

type soState struct {
	so  *sharedobject.Object
	obj *goja.Object
}

var (
	_ session.Application       = (*App)(nil)
	_ session.InstanceStarter   = (*App)(nil)
	_ session.InstanceStopper   = (*App)(nil)
	_ session.ConnectHandler    = (*App)(nil)
	_ session.DisconnectHandler = (*App)(nil)
)

func newApp(cfg Config, app, instance, file string) *App {
	vm := goja.New()
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	a := &App{
		cfg:     cfg,
		name:    app + "/" + instance,
		dir:     filepath.Dir(file),
		file:    file,
		log:     cfg.Log.With("app", app, "instance", instance, "script", filepath.Base(file)),
		vm:      vm,
		clients: make(map[*session.Client]*clientState),
		byObj:   make(map[*goja.Object]*clientState),
		sos:     make(map[string]*soState),
		soByObj: make(map[*goja.Object]*soState),

		streams:     make(map[string]*srvStream),
		streamByObj: make(map[*goja.Object]*srvStream),
	}
	a.l = newLoop(vm, cfg.QueueLen, cfg.MaxRun)
	a.l.onPanic = func(r any) { a.log.Error("script host panicked; task abandoned", "panic", fmt.Sprint(r)) }
	a.l.onError = func(err error) { a.scriptError("timer", err) }
	return a
}

// Start loads the script on the instance's new loop and runs onAppStart.
func (a *App) Start(in *session.Instance) {
	a.in = in
	go a.l.run()
	if err := a.l.post(a.load); err != nil {
		a.log.Error("script not started", "err", err)
	}
}

// Stop runs onAppStop and ends the loop.
func (a *App) Stop() {
	a.l.stop(func() {
		if a.loadErr == nil {
			a.callApp("onAppStop")
		}
		for _, st := range a.sos {
			st.so.SetSyncHook(nil)
			st.so.SetSendHook(nil)
			st.so.Release()
		}
		a.sos = nil
		for _, nc := range a.ncs {
			if nc.cur != nil {
				nc.closed = true
				nc.cur.cancel()
			}
		}
		a.ncs = nil
		a.closeFiles()
		for _, ss := range a.streams {
			a.closeStream(ss)
		}
	})
}

func (a *App) load() {
	if err := a.setup(); err != nil {
		a.loadErr = err
		a.log.Error("script setup failed", "err", err)
		return
	}
	if err := a.runFile(a.file); err != nil {
		a.loadErr = err
		a.scriptError("load", err)
		return
	}
	a.log.Info("script loaded")
	a.callApp("onAppStart")
}

// runFile compiles and runs a file of the app folder.
func (a *App) runFile(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(a.dir, path)
	prg, err := goja.Compile(rel, string(src), false)
	if err != nil {
		return err
	}
	_, err = a.vm.RunProgram(prg)
	return err
}

// scriptError logs a script error with where it happened (file:line in
// goja's message and stack).
// The error then goes to application.onStatus as Application.Script.Error,
// as on FMS, in a task of its own (so that it has its own time limit);
// an error in application.onStatus itself goes nowhere else.
func (a *App) scriptError(where string, err error) {
	var ex *goja.Exception
	desc := err.Error()
	if errors.As(err, &ex) {
		desc = ex.Error()
		a.log.Error("script error", "in", where, "err", desc, "stack", strings.TrimSpace(ex.String()))
	} else {
		a.log.Error("script error", "in", where, "err", desc)
	}
	if where == "application.onStatus" || a.appObj == nil {
		return
	}
	_ = a.l.post(func() {
		a.appStatus(a.infoObject("error", "Application.Script.Error", desc, where))
	})
}

// appStatus calls application.onStatus(info), if defined: script errors
// and the status events of streams and NetConnections that have no
// onStatus of their own go there, as on FMS.
func (a *App) appStatus(info *goja.Object) {
	if a.appObj == nil || a.loadErr != nil {
		return
	}
	a.callApp("onStatus", info)
}

// describe is what a client is told of a script error.
func describe(err error) string {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return "Application error: " + fmt.Sprint(ie.Value())
	}
	return err.Error()
}

// callApp calls application[name](args...) if it is a function.
func (a *App) callApp(name string, args ...goja.Value) (goja.Value, bool, error) {
	fn, ok := goja.AssertFunction(a.appObj.Get(name))
	if !ok {
		return nil, false, nil
	}
	v, err := fn(a.appObj, args...)
	if err != nil {
		a.scriptError("application."+name, err)
	}
	return v, true, err
}

// --- session.Application and lifecycle ---

// Connect runs application.onConnect on the loop.
func (a *App) Connect(c *session.Client, params []any, decide func(session.ConnectDecision)) {
	err := a.l.postWait(func() { a.connect(c, params, decide) }, time.Second)
	if err != nil {
		decide(session.ConnectDecision{Description: "Application unavailable (" + err.Error() + ")."})
	}
}

func (a *App) connect(c *session.Client, params []any, decide func(session.ConnectDecision)) {
	if a.loadErr != nil {
		decide(session.ConnectDecision{Description: describe(a.loadErr)})
		return
	}
	st := &clientState{c: c, decide: decide}
	st.obj = a.newClientObject(c)
	a.clients[c] = st
	a.byObj[st.obj] = st
	args := append([]goja.Value{st.obj}, jsArgs(a.vm, params)...)
	ret, defined, err := a.callApp("onConnect", args...)
	var b, isBool bool
	if ret != nil {
		b, isBool = ret.Export().(bool)
	}
	switch {
	case err != nil:
		a.decideClient(st, false, nil, describe(err))
	case st.decide == nil: // decided inside onConnect
	case !defined:
		a.decideClient(st, true, nil, "")
	case isBool:
		a.decideClient(st, b, nil, "")
	default:
		// null or nothing: pending until acceptConnection or
		// rejectConnection.
	}
}

// decideClient answers a pending connect.
func (a *App) decideClient(st *clientState, accept bool, info any, desc string) {
	d := st.decide
	if d == nil {
		return
	}
	st.decide = nil
	if accept {
		st.accepted = true
	} else {
		delete(a.clients, st.c)
		delete(a.byObj, st.obj)
	}
	d(session.ConnectDecision{Accept: accept, Info: info, Description: desc})
}

// Disconnect runs application.onDisconnect on the loop.
func (a *App) Disconnect(c *session.Client) {
	err := a.l.postWait(func() {
		st := a.clients[c]
		if st == nil {
			return
		}
		delete(a.clients, c)
		delete(a.byObj, st.obj)
		if st.accepted {
			a.callApp("onDisconnect", st.obj)
		}
	}, time.Second)
	if err != nil {
		a.log.Warn("onDisconnect not run", "client", c.ID(), "err", err)
	}
}

// Publish runs application.onPublish(client, stream) on the loop, as FMS
// does when a client starts publishing; stream.name names the stream.
func (a *App) Publish(c *session.Client, name string) { a.streamEvent("onPublish", c, name) }

// Unpublish runs application.onUnpublish(client, stream).
func (a *App) Unpublish(c *session.Client, name string) { a.streamEvent("onUnpublish", c, name) }

func (a *App) streamEvent(fn string, c *session.Client, name string) {
	err := a.l.post(func() {
		st := a.clients[c]
		if st == nil || !st.accepted {
			return
		}
		s := a.vm.NewObject()
		s.Set("name", name)
		a.callApp(fn, st.obj, s)
	})
	if err != nil {
		a.log.Warn(fn+" not run", "client", c.ID(), "stream", name, "err", err)
	}
}

// builtins are Client methods a remote client may not call.
var builtins = map[string]bool{
	"call": true, "ping": true, "getBandwidthLimit": true, "setBandwidthLimit": true,
	"getStats": true, "__resolve": true, "constructor": true, "toString": true,
	"valueOf": true, "hasOwnProperty": true,
}

// Call runs a client's call of a method defined on its client object (or
// Client.prototype, or found by __resolve) on the loop.
func (a *App) Call(c *session.Client, method string, args []any) (any, error) {
	return session.Async(func(reply func(any, error)) {
		err := a.l.post(func() {
			res, err := a.call(c, method, args)
			reply(res, err)
		})
		if err != nil {
			reply(nil, &session.CallError{Description: "Application busy."})
		}
	}), nil
}

func (a *App) call(c *session.Client, method string, args []any) (any, error) {
	if a.loadErr != nil {
		return nil, &session.CallError{Description: describe(a.loadErr)}
	}
	st := a.clients[c]
	if st == nil || !st.accepted || builtins[method] {
		return nil, session.ErrMethodNotFound
	}
	fn, ok := goja.AssertFunction(st.obj.Get(method))
	if !ok {
		if r, isFn := goja.AssertFunction(st.obj.Get("__resolve")); isFn {
			v, err := r(st.obj, a.vm.ToValue(method))
			if err != nil {
				return nil, a.callFailed(c, method, err)
			}
			fn, ok = goja.AssertFunction(v)
		}
	}
	if !ok {
		return nil, session.ErrMethodNotFound
	}
	v, err := fn(st.obj, jsArgs(a.vm, args)...)
	if err != nil {
		return nil, a.callFailed(c, method, err)
	}
	return toAMFFor(a.vm, v, c.AMF3()), nil
}

// callFailed logs a call's script error and makes it the client's
// _error: a thrown non-Error value goes along as "application", as FMS
// does.
func (a *App) callFailed(c *session.Client, method string, err error) error {
	a.scriptError("client."+method, err)
	var ex *goja.Exception
	if errors.As(err, &ex) {
		if o, ok := ex.Value().(*goja.Object); !ok || !isError(o) {
			return &session.CallError{Description: ex.Value().String(), Application: toAMFFor(a.vm, ex.Value(), c.AMF3())}
		}
	}
	return &session.CallError{Description: describe(err)}
}

func isError(o *goja.Object) bool {
	return o.ClassName() == "Error"
}

// --- host objects ---

func (a *App) setup() error {
	vm := a.vm
	vm.SetFieldNameMapper(nil)
	set := func(name string, v any) {
		if err := vm.Set(name, v); err != nil {
			panic(err) // setup of fixed names cannot fail
		}
	}
	set("trace", func(call goja.FunctionCall) goja.Value {
		parts := make([]string, len(call.Arguments))
		for i, v := range call.Arguments {
			parts[i] = v.String()
		}
		a.log.Info("trace", "msg", strings.Join(parts, " "))
		return goja.Undefined()
	})
	set("load", func(name string) {
		p, err := a.resolve(name)
		if err == nil {
			err = a.runFile(p)
		}
		if err != nil {
			panic(vm.NewGoError(fmt.Errorf("load(%q): %w", name, err)))
		}
	})
	timer := func(every bool) func(goja.FunctionCall) goja.Value {
		return func(call goja.FunctionCall) goja.Value {
			fn, ok := goja.AssertFunction(call.Argument(0))
			if !ok {
				panic(vm.NewTypeError("timer callback is not a function"))
			}
			ms := call.Argument(1).ToFloat()
			var extra []goja.Value
			if len(call.Arguments) > 2 {
				extra = append(extra, call.Arguments[2:]...)
			}
			id, err := a.l.addTimer(fn, time.Duration(ms*float64(time.Millisecond)), every, extra)
			if err != nil {
				panic(vm.NewGoError(err))
			}
			return vm.ToValue(id)
		}
	}
	clear := func(call goja.FunctionCall) goja.Value {
		a.l.clearTimer(call.Argument(0).ToInteger())
		return goja.Undefined()
	}
	set("setTimeout", timer(false))
	set("setInterval", timer(true))
	set("clearTimeout", clear)
	set("clearInterval", clear)

	if _, err := vm.RunString(prelude); err != nil {
		return err
	}
	a.appObj = vm.NewObject()
	a.setupApplication()
	set("application", a.appObj)
	a.setupClient()
	a.setupSharedObject()
	a.setupNetConnection()
	a.setupFile()
	a.setupStream()
	return nil
}

// prelude defines what is simplest in the script's own language.
const prelude = `
function Responder(onResult, onStatus) {
	this.onResult = onResult;
	this.onStatus = onStatus;
}
function Client() { throw new Error("Client objects are made by the server"); }
function SharedObject() { throw new Error("use SharedObject.get(name, persistent)"); }
function Stream() { throw new Error("use Stream.get(name)"); }
`

func (a *App) setupApplication() {
	vm, o := a.vm, a.appObj
	_ = o.Set("name", a.name)
	_ = o.DefineAccessorProperty("clients", vm.ToValue(func() goja.Value {
		list := make([]*clientState, 0, len(a.clients))
		for _, st := range a.clients {
			if st.accepted {
				list = append(list, st)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].c.ID() < list[j].c.ID() })
		vals := make([]any, len(list))
		for i, st := range list {
			vals[i] = st.obj
		}
		return vm.NewArray(vals...)
	}), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	clientArg := func(v goja.Value) *clientState {
		o, ok := v.(*goja.Object)
		if !ok || a.byObj[o] == nil {
			panic(vm.NewTypeError("not a client"))
		}
		return a.byObj[o]
	}
	_ = o.Set("acceptConnection", func(call goja.FunctionCall) goja.Value {
		st := clientArg(call.Argument(0))
		if st.decide == nil {
			return vm.ToValue(false)
		}
		a.decideClient(st, true, nil, "")
		return vm.ToValue(true)
	})
	_ = o.Set("rejectConnection", func(call goja.FunctionCall) goja.Value {
		st := clientArg(call.Argument(0))
		if st.decide == nil {
			return vm.ToValue(false)
		}
		var info any
		desc := ""
		if v := call.Argument(1); !goja.IsUndefined(v) && !goja.IsNull(v) {
			info = toAMFFor(vm, v, st.c.AMF3())
			if io, ok := v.(*goja.Object); ok {
				if d := io.Get("description"); d != nil && !goja.IsUndefined(d) {
					desc = d.String()
				}
			}
		}
		a.decideClient(st, false, info, desc)
		return vm.ToValue(true)
	})
	_ = o.Set("disconnect", func(call goja.FunctionCall) goja.Value {
		st := clientArg(call.Argument(0))
		st.c.Close("disconnected by the application")
		return vm.ToValue(true)
	})
	_ = o.Set("broadcastMsg", func(call goja.FunctionCall) goja.Value {
		method := call.Argument(0).String()
		var args []any
		if len(call.Arguments) > 1 {
			args = amfArgs(vm, call.Arguments[1:])
		}
		if err := a.in.Broadcast(method, args...); err != nil {
			panic(vm.NewGoError(err))
		}
		return goja.Undefined()
	})
	_ = o.Set("shutdown", func() bool {
		for _, st := range a.clients {
			st.c.Close("application shut down")
		}
		return true
	})
}

func (a *App) setupClient() {
	vm := a.vm
	ctor := vm.Get("Client").(*goja.Object)
	p := ctor.Get("prototype").(*goja.Object)
	a.clientProto = p
	self := func(this goja.Value) *clientState {
		o, ok := this.(*goja.Object)
		if !ok || a.byObj[o] == nil {
			panic(vm.NewTypeError("not a connected client"))
		}
		return a.byObj[o]
	}
	_ = p.Set("call", func(call goja.FunctionCall) goja.Value {
		st := self(call.This)
		method := call.Argument(0).String()
		var args []any
		if len(call.Arguments) > 2 {
			args = amfArgsFor(vm, call.Arguments[2:], st.c.AMF3())
		}
		resp, hasResp := call.Argument(1).(*goja.Object)
		if !hasResp {
			st.c.Call(method, args, nil)
			return vm.ToValue(true)
		}
		st.c.Call(method, args, func(res any, err error) {
			perr := a.l.postWait(func() { a.respond(resp, res, err) }, 5*time.Second)
			if perr != nil {
				a.log.Warn("responder not run", "method", method, "err", perr)
			}
		})
		return vm.ToValue(true)
	})
	_ = p.Set("ping", func(call goja.FunctionCall) goja.Value {
		return vm.ToValue(self(call.This).c.Ping())
	})
	_ = p.Set("getStats", func(call goja.FunctionCall) goja.Value {
		st := self(call.This).c.Stats()
		o := vm.NewObject()
		_ = o.Set("bytes_in", float64(st.BytesIn))
		_ = o.Set("bytes_out", float64(st.BytesOut))
		rtt := -1.0
		if st.PingRTT >= 0 {
			rtt = float64(st.PingRTT.Microseconds()) / 1000
		}
		_ = o.Set("ping_rtt", rtt)
		_ = o.Set("connected_seconds", st.Connected.Seconds())
		return o
	})
	_ = p.Set("getBandwidthLimit", func(call goja.FunctionCall) goja.Value {
		out, in := self(call.This).c.BandwidthLimit()
		if call.Argument(0).ToInteger() == 0 {
			return vm.ToValue(float64(in))
		}
		return vm.ToValue(float64(out))
	})
	_ = p.Set("setBandwidthLimit", func(call goja.FunctionCall) goja.Value {
		st := self(call.This)
		st.c.SetBandwidthLimit(call.Argument(0).ToInteger(), call.Argument(1).ToInteger())
		return goja.Undefined()
	})
}

// respond gives a server-to-client call's answer to its Responder.
func (a *App) respond(resp *goja.Object, res any, err error) {
	name, arg := "onResult", toJS(a.vm, res)
	if err != nil {
		name = "onStatus"
		var re *session.RemoteError
		if errors.As(err, &re) {
			arg = toJS(a.vm, re.Info)
		} else {
			o := a.vm.NewObject()
			_ = o.Set("level", "error")
			_ = o.Set("code", "NetConnection.Call.Failed")
			_ = o.Set("description", err.Error())
			arg = o
		}
	}
	if fn, ok := goja.AssertFunction(resp.Get(name)); ok {
		if _, e := fn(resp, arg); e != nil {
			a.scriptError("Responder."+name, e)
		}
	}
}

func (a *App) newClientObject(c *session.Client) *goja.Object {
	o := a.vm.NewObject()
	_ = o.SetPrototype(a.clientProto)
	_ = o.Set("id", strconv.FormatUint(c.ID(), 10))
	_ = o.Set("ip", c.IP())
	_ = o.Set("agent", c.Agent())
	_ = o.Set("protocol", c.Protocol())
	_ = o.Set("referrer", c.SWFURL())
	_ = o.Set("pageUrl", c.PageURL())
	_ = o.Set("uri", c.TCURL())
	a.defineAccess(o, "readAccess", c.ReadAccess, c.SetReadAccess)
	a.defineAccess(o, "writeAccess", c.WriteAccess, c.SetWriteAccess)
	return o
}

// defineAccess makes Client.readAccess or writeAccess an accessor of the
// client's access list in the core (session/access.go), which play,
// publish and shared objects check: reading gives the current string
// (normalized), setting applies to the client's later requests. null and
// undefined are "" (no access); other values are converted to strings.
func (a *App) defineAccess(o *goja.Object, name string, get func() string, set func(string) (string, error)) {
	vm := a.vm
	getter := vm.ToValue(func(goja.FunctionCall) goja.Value { return vm.ToValue(get()) })
	setter := vm.ToValue(func(call goja.FunctionCall) goja.Value {
		v := call.Argument(0)
		s := ""
		if !goja.IsNull(v) && !goja.IsUndefined(v) {
			s = v.String()
		}
		if _, err := set(s); err != nil {
			panic(vm.NewTypeError("Client." + name + ": " + err.Error()))
		}
		return goja.Undefined()
	})
	_ = o.DefineAccessorProperty(name, getter, setter, goja.FLAG_FALSE, goja.FLAG_TRUE)
}
