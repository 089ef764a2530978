package script

import (
	"reflect"
	"strconv"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// AMF ↔ JavaScript conversion.
//
//	AMF                         JavaScript
//	null / undefined            null / undefined
//	number, int                 number
//	string, XML, XMLDocument    string
//	boolean                     boolean
//	Date                        Date
//	Object, ECMA array          Object (property order kept)
//	TypedObject                 Object with a non-enumerable __className
//	strict array, vectors       Array
//	MixedArray                  Array with named members
//	ByteArray                   Uint8Array
//
// Back to AMF, a Uint8Array or ArrayBuffer becomes a ByteArray, an object
// with __className a TypedObject, an Array with named members a MixedArray
// (an ECMA array in AMF0), functions are left out.

const (
	classNameKey = "__className"
	maxDepth     = 64
	maxArrayLen  = 1 << 20
)

var (
	typeBytes       = reflect.TypeOf([]byte(nil))
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
)

// toJS converts a decoded AMF value.
func toJS(vm *goja.Runtime, v any) goja.Value { return toJSDepth(vm, v, 0) }

func toJSDepth(vm *goja.Runtime, v any, depth int) goja.Value {
	if depth > maxDepth {
		return goja.Null()
	}
	d := depth + 1
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case amf.Undefined, amf.Unsupported:
		return goja.Undefined()
	case float64, bool, string:
		return vm.ToValue(x)
	case int32:
		return vm.ToValue(float64(x))
	case uint32:
		return vm.ToValue(float64(x))
	case int:
		return vm.ToValue(float64(x))
	case amf.XML:
		return vm.ToValue(string(x))
	case amf.XMLDocument:
		return vm.ToValue(string(x))
	case time.Time:
		d, err := vm.New(vm.Get("Date"), vm.ToValue(float64(x.UnixMilli())))
		if err != nil {
			return goja.Null()
		}
		return d
	case amf.Object:
		return propsToJS(vm, vm.NewObject(), x, d)
	case amf.ECMAArray:
		return propsToJS(vm, vm.NewObject(), amf.Object(x), d)
	case amf.TypedObject:
		o := propsToJS(vm, vm.NewObject(), x.Props, d)
		_ = o.DefineDataProperty(classNameKey, vm.ToValue(x.Class), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
		return o
	case []any:
		return arrayToJS(vm, x, d)
	case amf.MixedArray:
		a := arrayToJS(vm, x.Dense, d)
		return propsToJS(vm, a, x.Assoc, d)
	case amf.VectorInt:
		out := make([]any, len(x.Items))
		for i, n := range x.Items {
			out[i] = float64(n)
		}
		return arrayToJS(vm, out, d)
	case amf.VectorUint:
		out := make([]any, len(x.Items))
		for i, n := range x.Items {
			out[i] = float64(n)
		}
		return arrayToJS(vm, out, d)
	case amf.VectorDouble:
		out := make([]any, len(x.Items))
		for i, n := range x.Items {
			out[i] = n
		}
		return arrayToJS(vm, out, d)
	case amf.VectorObject:
		return arrayToJS(vm, x.Items, d)
	case amf.ByteArray:
		return bytesToJS(vm, x)
	case []byte:
		return bytesToJS(vm, x)
	case amf.Dictionary:
		o := vm.NewObject()
		for _, e := range x.Entries {
			k, ok := e.Key.(string)
			if !ok {
				if n, isNum := amf.Number(e.Key); isNum {
					k = strconv.FormatFloat(n, 'g', -1, 64)
				} else {
					continue
				}
			}
			_ = o.Set(k, toJSDepth(vm, e.Value, d))
		}
		return o
	case amf.AVMPlus:
		return toJSDepth(vm, x.Value, depth)
	}
	return goja.Undefined()
}

func propsToJS(vm *goja.Runtime, o *goja.Object, props amf.Object, depth int) *goja.Object {
	for _, p := range props {
		_ = o.Set(p.Key, toJSDepth(vm, p.Value, depth))
	}
	return o
}

func arrayToJS(vm *goja.Runtime, items []any, depth int) *goja.Object {
	vals := make([]any, len(items))
	for i, it := range items {
		vals[i] = toJSDepth(vm, it, depth)
	}
	return vm.NewArray(vals...)
}

func bytesToJS(vm *goja.Runtime, b []byte) goja.Value {
	buf := vm.NewArrayBuffer(append([]byte(nil), b...))
	u, err := vm.New(vm.Get("Uint8Array"), vm.ToValue(buf))
	if err != nil {
		return goja.Null()
	}
	return u
}

// toAMF converts a JavaScript value to what the AMF encoders take.
func toAMF(vm *goja.Runtime, v goja.Value) any { return toAMFDepth(vm, v, 0) }

func toAMFDepth(vm *goja.Runtime, v goja.Value, depth int) any {
	if v == nil || goja.IsUndefined(v) {
		return amf.Undefined{}
	}
	if goja.IsNull(v) {
		return nil
	}
	if depth > maxDepth {
		return nil
	}
	d := depth + 1
	o, isObj := v.(*goja.Object)
	if !isObj {
		switch x := v.Export().(type) {
		case int64:
			return float64(x)
		case float64:
			return x
		case bool:
			return x
		case string:
			return x
		}
		return v.String()
	}
	switch o.ClassName() {
	case "Function":
		return amf.Undefined{}
	case "Date":
		if t, ok := o.Export().(time.Time); ok {
			return t
		}
		return nil
	case "Array":
		return arrayToAMF(vm, o, d)
	case "Number", "String", "Boolean":
		return toAMFDepth(vm, vm.ToValue(o.Export()), depth)
	}
	// ExportType is cheap; Export of a plain object would copy it whole.
	switch o.ExportType() {
	case typeBytes:
		if b, ok := o.Export().([]byte); ok {
			return amf.ByteArray(append([]byte(nil), b...))
		}
	case typeArrayBuffer:
		if ab, ok := o.Export().(goja.ArrayBuffer); ok {
			return amf.ByteArray(append([]byte(nil), ab.Bytes()...))
		}
	}
	props := objectProps(vm, o, d)
	if c := o.Get(classNameKey); c != nil && !goja.IsUndefined(c) && !goja.IsNull(c) && c.String() != "" {
		return amf.TypedObject{Class: c.String(), Props: props}
	}
	return props
}

func objectProps(vm *goja.Runtime, o *goja.Object, depth int) amf.Object {
	keys := o.Keys()
	props := make(amf.Object, 0, len(keys))
	for _, k := range keys {
		pv := o.Get(k)
		if po, ok := pv.(*goja.Object); ok && po.ClassName() == "Function" {
			continue
		}
		props = append(props, amf.Property{Key: k, Value: toAMFDepth(vm, pv, depth)})
	}
	return props
}

func arrayToAMF(vm *goja.Runtime, o *goja.Object, depth int) any {
	n := o.Get("length").ToInteger()
	if n < 0 {
		n = 0
	}
	if n > maxArrayLen {
		n = maxArrayLen // a sparse array is not worth a million nulls
	}
	dense := make([]any, 0, n)
	for i := int64(0); i < n; i++ {
		dense = append(dense, toAMFDepth(vm, o.Get(strconv.FormatInt(i, 10)), depth))
	}
	var assoc amf.Object
	for _, k := range o.Keys() {
		if idx, err := strconv.ParseInt(k, 10, 64); err == nil && idx >= 0 && idx < n {
			continue
		}
		assoc = append(assoc, amf.Property{Key: k, Value: toAMFDepth(vm, o.Get(k), depth)})
	}
	if len(assoc) > 0 {
		return amf.MixedArray{Dense: dense, Assoc: assoc}
	}
	return dense
}

// jsArgs converts call arguments.
func jsArgs(vm *goja.Runtime, args []any) []goja.Value {
	out := make([]goja.Value, len(args))
	for i, a := range args {
		out[i] = toJS(vm, a)
	}
	return out
}

// amfArgs converts JavaScript arguments.
func amfArgs(vm *goja.Runtime, args []goja.Value) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = toAMF(vm, a)
	}
	return out
}
