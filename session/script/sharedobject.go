package script

import (
	"math"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// soBuiltins are SharedObject methods a client's send may not call.
var soBuiltins = map[string]bool{
	"setProperty": true, "getProperty": true, "getPropertyNames": true, "size": true,
	"send": true, "lock": true, "unlock": true, "clear": true, "flush": true,
	"close": true, "onSync": true, "constructor": true, "purge": true, "version": true,
}

func (a *App) setupSharedObject() {
	vm := a.vm
	ctor := vm.Get("SharedObject").(*goja.Object)
	p := ctor.Get("prototype").(*goja.Object)
	a.soProto = p
	_ = ctor.Set("get", func(name string, persistent bool) goja.Value {
		var key string
		if persistent {
			key = "P:" + name
		} else {
			key = "T:" + name
		}
		if st := a.sos[key]; st != nil {
			return st.obj
		}
		so, err := a.in.SharedObject(name, persistent)
		if err != nil {
			panic(vm.NewGoError(err))
		}
		st := &soState{so: so, obj: vm.NewObject()}
		_ = st.obj.SetPrototype(p)
		_ = st.obj.Set("name", name)
		_ = st.obj.Set("persistent", persistent)
		a.sos[key] = st
		a.soByObj[st.obj] = st
		a.hookSO(st)
		return st.obj
	})
	self := func(this goja.Value) *sharedobject.Object {
		o, ok := this.(*goja.Object)
		if !ok || a.soByObj[o] == nil {
			panic(vm.NewTypeError("not an open SharedObject"))
		}
		return a.soByObj[o].so
	}
	check := func(err error) {
		if err != nil {
			panic(vm.NewGoError(err))
		}
	}
	_ = p.Set("setProperty", func(call goja.FunctionCall) goja.Value {
		so := self(call.This)
		k, v := call.Argument(0).String(), call.Argument(1)
		if goja.IsNull(v) || goja.IsUndefined(v) {
			check(so.Delete(k))
		} else {
			check(so.Set(k, toAMF(vm, v)))
		}
		return goja.Undefined()
	})
	_ = p.Set("getProperty", func(call goja.FunctionCall) goja.Value {
		v, ok := self(call.This).Get(call.Argument(0).String())
		if !ok {
			return goja.Null()
		}
		return toJS(vm, v)
	})
	_ = p.Set("getPropertyNames", func(call goja.FunctionCall) goja.Value {
		names := self(call.This).Names()
		vals := make([]any, len(names))
		for i, n := range names {
			vals[i] = n
		}
		return vm.NewArray(vals...)
	})
	_ = p.Set("size", func(call goja.FunctionCall) goja.Value {
		return vm.ToValue(len(self(call.This).Names()))
	})
	_ = p.Set("send", func(call goja.FunctionCall) goja.Value {
		so := self(call.This)
		var args []any
		if len(call.Arguments) > 1 {
			args = amfArgs(vm, call.Arguments[1:])
		}
		check(so.Send(call.Argument(0).String(), args...))
		return vm.ToValue(true)
	})
	_ = p.Set("lock", func(call goja.FunctionCall) goja.Value {
		self(call.This).Lock()
		return goja.Undefined()
	})
	_ = p.Set("unlock", func(call goja.FunctionCall) goja.Value {
		self(call.This).Unlock()
		return goja.Undefined()
	})
	_ = p.Set("clear", func(call goja.FunctionCall) goja.Value {
		check(self(call.This).Clear())
		return vm.ToValue(true)
	})
	_ = p.Set("flush", func(call goja.FunctionCall) goja.Value {
		check(self(call.This).Flush())
		return vm.ToValue(true)
	})
	// version: the object's version (undefined once closed).
	_ = p.DefineAccessorProperty("version", vm.ToValue(func(call goja.FunctionCall) goja.Value {
		if o, ok := call.This.(*goja.Object); ok && a.soByObj[o] != nil {
			return vm.ToValue(float64(a.soByObj[o].so.Version()))
		}
		return goja.Undefined()
	}), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	// purge(version) drops the deleted properties older than version (FMS:
	// "purge all deleted properties that are older than the specified
	// version"); it returns nothing, as on FMS.
	_ = p.Set("purge", func(call goja.FunctionCall) goja.Value {
		so := self(call.This)
		f := call.Argument(0).ToFloat()
		if math.IsNaN(f) {
			panic(vm.NewTypeError("SharedObject.purge: version is not a number"))
		}
		check(func() error { _, err := so.Purge(uint32(max(0, min(f, math.MaxUint32)))); return err }())
		return goja.Undefined()
	})
	_ = p.Set("close", func(call goja.FunctionCall) goja.Value {
		o, _ := call.This.(*goja.Object)
		st := a.soByObj[o]
		if st == nil {
			return vm.ToValue(false)
		}
		delete(a.soByObj, o)
		for k, v := range a.sos {
			if v == st {
				delete(a.sos, k)
			}
		}
		st.so.SetSyncHook(nil)
		st.so.SetSendHook(nil)
		st.so.Release()
		return vm.ToValue(true)
	})
}

// hookSO routes the clients' changes the object made to onSync and clients' sends to the
// object's handler methods, on the loop.
func (a *App) hookSO(st *soState) {
	// Only the changes the object made, once made, with their values
	// (a change that lost to another one of its sync interval, or broke a
	// limit, is not one), in the order made: the SyncHook is told them
	// off the object's lock, and queues them to the loop in that order.
	st.so.SetSyncHook(func(s sharedobject.Synced) {
		var old any
		if s.HadOld {
			old = s.Old
		}
		err := a.l.postWait(func() { a.onSync(st, s.Key, old, s.Value, s.Remove) }, time.Second)
		if err != nil {
			a.log.Warn("onSync not run", "so", st.so.Name(), "err", err)
		}
	})
	st.so.SetSendHook(func(_ sharedobject.Member, handler string, args []any) {
		if soBuiltins[handler] {
			return
		}
		err := a.l.postWait(func() {
			if a.soByObj[st.obj] == nil {
				return
			}
			fn, ok := goja.AssertFunction(st.obj.Get(handler))
			if !ok {
				return
			}
			if _, err := fn(st.obj, jsArgs(a.vm, args)...); err != nil {
				a.scriptError("SharedObject."+handler, err)
			}
		}, time.Second)
		if err != nil {
			a.log.Warn("shared object handler not run", "so", st.so.Name(), "handler", handler, "err", err)
		}
	})
}

// onSync calls so.onSync([{code, name, oldValue, newValue}]) for a
// client's change.
func (a *App) onSync(st *soState, key string, old, val any, remove bool) {
	if a.soByObj[st.obj] == nil {
		return
	}
	fn, ok := goja.AssertFunction(st.obj.Get("onSync"))
	if !ok {
		return
	}
	vm := a.vm
	ev := vm.NewObject()
	if remove {
		_ = ev.Set("code", "delete")
	} else {
		_ = ev.Set("code", "change")
		_ = ev.Set("newValue", toJS(vm, val))
	}
	_ = ev.Set("name", key)
	_ = ev.Set("oldValue", toJS(vm, old))
	if _, err := fn(st.obj, vm.NewArray(ev)); err != nil {
		a.scriptError("SharedObject.onSync", err)
	}
}
