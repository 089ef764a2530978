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
//	Object                      Object (property order kept)
//	TypedObject                 Object with a non-enumerable __className
//	strict array, vectors       Array
//	ECMA array (AMF0)           Array: index keys ("0", "1", ...) are its
//	                            elements, other keys named members (an
//	                            ECMA array with a "length" key: Object)
//	MixedArray (AMF3)           Array with named members
//	ByteArray                   Uint8Array
//
// Back to AMF, a Uint8Array or ArrayBuffer becomes a ByteArray, an object
// with __className a TypedObject, a dense Array a strict array, and an
// Array with named members or holes an ECMA array in AMF0 (index keys
// first, then the named members) and a mixed array in AMF3 (its dense
// part the elements from 0 up to the first hole); functions are left out.
// An ECMA array thus comes back as an ECMA array, with its members in
// index-then-insertion order, except one with only dense index keys (or
// none), which comes back as a strict array, which AMF clients read as the
// same Array. Where the receiver's encoding is not known (shared objects,
// stream data, broadcasts), the AMF0 form is used; it also reads as a
// mixed array in AMF3.

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
		return ecmaToJS(vm, x, d)
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

// ecmaToJS makes an Array of an ECMA array: members with index keys are
// its elements, the others named members. A "length" member cannot be
// one of an Array: such an ECMA array becomes an Object.
func ecmaToJS(vm *goja.Runtime, x amf.ECMAArray, depth int) *goja.Object {
	for _, p := range x {
		if p.Key == "length" {
			return propsToJS(vm, vm.NewObject(), amf.Object(x), depth)
		}
	}
	return propsToJS(vm, vm.NewArray(), amf.Object(x), depth)
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

// toAMF converts a JavaScript value to what the AMF encoders take, in the
// AMF0 form (see above).
func toAMF(vm *goja.Runtime, v goja.Value) any { return toAMFDepth(vm, v, 0, false) }

// toAMFFor converts a JavaScript value for a receiver whose encoding is
// known: amf3 gives arrays with named members as mixed arrays.
func toAMFFor(vm *goja.Runtime, v goja.Value, amf3 bool) any { return toAMFDepth(vm, v, 0, amf3) }

func toAMFDepth(vm *goja.Runtime, v goja.Value, depth int, amf3 bool) any {
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
		return arrayToAMF(vm, o, d, amf3)
	case "Number", "String", "Boolean":
		return toAMFDepth(vm, vm.ToValue(o.Export()), depth, amf3)
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
	props := objectProps(vm, o, d, amf3)
	if c := o.Get(classNameKey); c != nil && !goja.IsUndefined(c) && !goja.IsNull(c) && c.String() != "" {
		return amf.TypedObject{Class: c.String(), Props: props}
	}
	return props
}

func objectProps(vm *goja.Runtime, o *goja.Object, depth int, amf3 bool) amf.Object {
	return amf.Object(keyedProps(vm, o, o.Keys(), depth, amf3))
}

// keyedProps converts o's members named keys, in that order, leaving its
// methods out.
func keyedProps(vm *goja.Runtime, o *goja.Object, keys []string, depth int, amf3 bool) []amf.Property {
	props := make([]amf.Property, 0, len(keys))
	for _, k := range keys {
		pv := o.Get(k)
		if po, ok := pv.(*goja.Object); ok && po.ClassName() == "Function" {
			continue
		}
		props = append(props, amf.Property{Key: k, Value: toAMFDepth(vm, pv, depth, amf3)})
	}
	return props
}

// arrayIndex reports whether k is an array index (canonical, below 2^32-1).
func arrayIndex(k string) (uint32, bool) {
	if k == "" || len(k) > 10 || k != "0" && k[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(k, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

func arrayToAMF(vm *goja.Runtime, o *goja.Object, depth int, amf3 bool) any {
	n := o.Get("length").ToInteger()
	keys := o.Keys() // indexes first, ascending, then named members in order
	elems := 0
	for _, k := range keys {
		if _, ok := arrayIndex(k); ok {
			elems++
		}
	}
	if int64(elems) == n && elems == len(keys) && n <= maxArrayLen {
		dense := make([]any, 0, n)
		for i := int64(0); i < n; i++ {
			dense = append(dense, toAMFDepth(vm, o.Get(strconv.FormatInt(i, 10)), depth, amf3))
		}
		return dense
	}
	// Holes or named members.
	if len(keys) > maxArrayLen {
		keys = keys[:maxArrayLen]
	}
	if !amf3 {
		return amf.ECMAArray(keyedProps(vm, o, keys, depth, amf3))
	}
	var m amf.MixedArray
	m.Dense = []any{}
	for _, k := range keys {
		pv := o.Get(k)
		if po, ok := pv.(*goja.Object); ok && po.ClassName() == "Function" {
			continue
		}
		if i, ok := arrayIndex(k); ok && int(i) == len(m.Dense) && len(m.Assoc) == 0 {
			m.Dense = append(m.Dense, toAMFDepth(vm, pv, depth, amf3))
			continue
		}
		m.Assoc = append(m.Assoc, amf.Property{Key: k, Value: toAMFDepth(vm, pv, depth, amf3)})
	}
	if len(m.Assoc) == 0 {
		return m.Dense
	}
	return m
}

// jsArgs converts call arguments.
func jsArgs(vm *goja.Runtime, args []any) []goja.Value {
	out := make([]goja.Value, len(args))
	for i, a := range args {
		out[i] = toJS(vm, a)
	}
	return out
}

// amfArgs converts JavaScript arguments (AMF0 form).
func amfArgs(vm *goja.Runtime, args []goja.Value) []any { return amfArgsFor(vm, args, false) }

// amfArgsFor converts JavaScript arguments for a receiver of known
// encoding.
func amfArgsFor(vm *goja.Runtime, args []goja.Value, amf3 bool) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = toAMFFor(vm, a, amf3)
	}
	return out
}
