// rtmphub.js: the FMS client API (NetConnection, SharedObject, NetStream,
// Responder) for web pages, speaking RTMP to an rtmphub server through a
// WebSocket (path /rtmp, binary frames carrying the raw RTMP byte stream).
//
// One ES module, no build step and no runtime dependencies: the AMF0/AMF3
// codecs, the handshake and the chunk stream are written here so that the
// reference tables, the AVM+ switch and the FMS quirks are under our exact
// control (see README.md). Every buffer and table is bounded; a peer that
// exceeds a bound loses its connection with an error status, never the page.

// ---------------------------------------------------------------------------
// Bytes

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: false });

/** Error thrown by the AMF codecs. kind: truncated | depth | toolarge | invalid | unencodable. */
export class AMFError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "AMFError";
    this.kind = kind;
  }
}

// Writer is a growable byte buffer.
class Writer {
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(v) { this.reserve(1); this.buf[this.len++] = v; }
  u16(v) { this.reserve(2); this.view.setUint16(this.len, v); this.len += 2; }
  u24(v) { this.reserve(3); this.buf[this.len] = v >>> 16; this.buf[this.len + 1] = v >>> 8; this.buf[this.len + 2] = v; this.len += 3; }
  u32(v) { this.reserve(4); this.view.setUint32(this.len, v >>> 0); this.len += 4; }
  u32le(v) { this.reserve(4); this.view.setUint32(this.len, v >>> 0, true); this.len += 4; }
  i32(v) { this.reserve(4); this.view.setInt32(this.len, v); this.len += 4; }
  f64(v) { this.reserve(8); this.view.setFloat64(this.len, v); this.len += 8; }
  bytes(b) { this.reserve(b.length); this.buf.set(b, this.len); this.len += b.length; }
  result() { return this.buf.slice(0, this.len); }
}

// Reader reads big-endian values from b[off:end].
class Reader {
  constructor(b, off = 0, end = b.length) {
    this.b = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.off = off;
    this.end = end;
  }
  left() { return this.end - this.off; }
  need(n, what) {
    if (this.end - this.off < n) throw new AMFError("truncated", `${what || "value"} at offset ${this.off}: truncated input`);
  }
  u8() { this.need(1); return this.b[this.off++]; }
  peek() { return this.off < this.end ? this.b[this.off] : -1; }
  u16() { this.need(2); const v = this.view.getUint16(this.off); this.off += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.off); this.off += 4; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.off); this.off += 4; return v; }
  f64() { this.need(8); const v = this.view.getFloat64(this.off); this.off += 8; return v; }
  bytes(n) { this.need(n); const v = this.b.slice(this.off, this.off + n); this.off += n; return v; }
  str(n) { this.need(n, "string"); const s = textDecoder.decode(this.b.subarray(this.off, this.off + n)); this.off += n; return s; }
}

function utf8(s) { return textEncoder.encode(s); }

function concatBytes(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// ---------------------------------------------------------------------------
// AMF values
//
// Decoded values are plain JavaScript values (see README.md, "AMF values"):
// numbers (AMF0 number, AMF3 integer and double), strings, booleans, null,
// undefined, Date, Array, plain objects, Uint8Array (ByteArray), Map
// (Dictionary), Int32Array/Uint32Array/Float64Array (Vector.<int|uint|Number>).
// What JavaScript has no type for is marked with a non-enumerable symbol
// property (AMF_META) so that it encodes back the same way: typed objects
// (class name), AMF0 ECMA arrays, Vector.<Object> and fixed vectors, weak
// dictionaries.

/** Symbol of the non-enumerable property holding AMF type information. */
export const AMF_META = Symbol.for("rtmphub.amf");

function setMeta(v, meta) {
  Object.defineProperty(v, AMF_META, { value: meta, enumerable: false, configurable: true, writable: true });
  return v;
}
function metaOf(v) { return v !== null && typeof v === "object" ? v[AMF_META] : undefined; }

/** flash.xml.XMLDocument (AMF0 0x0F, AMF3 0x07). */
export class AMFXMLDocument {
  constructor(text) { this.text = String(text); }
  toString() { return this.text; }
}
/** E4X XML (AMF3 0x0B). */
export class AMFXML {
  constructor(text) { this.text = String(text); }
  toString() { return this.text; }
}

const CLASS_ARRAY_COLLECTION = "flex.messaging.io.ArrayCollection";
const CLASS_OBJECT_PROXY = "flex.messaging.io.ObjectProxy";

/** Helpers to build and inspect the AMF types JavaScript lacks. */
export const amf = {
  /** obj marked as a typed object of class className (AMF0 0x10, AMF3 sealed traits). */
  typedObject(className, obj = {}) { return setMeta(obj, { kind: "typed", className: String(className) }); },
  /** obj marked as an AMF0 ECMA array (0x08); AMF3: an associative array. */
  ecmaArray(obj = {}) { return setMeta(obj, { kind: "ecma" }); },
  /** arr marked as a Vector.<className> (AMF3 0x10). */
  vector(className, arr = [], fixed = false) { return setMeta(arr, { kind: "vector", className: String(className), fixed }); },
  /** Marks a typed array / vector as fixed-length, or a Map as a weak-keyed Dictionary. */
  fixed(v) { return setMeta(v, { ...(metaOf(v) || {}), fixed: true }); },
  weakKeys(map) { return setMeta(map, { kind: "dict", weakKeys: true }); },
  /** The class name of a decoded typed object, or "". */
  className(v) { const m = metaOf(v); return m && m.kind === "typed" ? m.className : ""; },
  /** Forces v to be written in AMF3 behind an AVM+ switch (0x11) in AMF0. */
  avmplus(v) { return new AVMPlus(v); },
  isECMAArray(v) { const m = metaOf(v); return !!m && m.kind === "ecma"; },
  encode0: (...vals) => { const e = new AMFEncoder(); for (const v of vals) e.encode0(v); return e.w.result(); },
  encode3: (...vals) => { const e = new AMFEncoder(); for (const v of vals) e.encode3(v); return e.w.result(); },
  decode0: (bytes, limits) => decodeAll(bytes, false, limits),
  decode3: (bytes, limits) => decodeAll(bytes, true, limits),
};

class AVMPlus { constructor(v) { this.value = v; } }

function decodeAll(bytes, amf3, limits) {
  const d = new AMFDecoder(bytes, 0, bytes.length, limits);
  const out = [];
  while (d.r.left() > 0) out.push(amf3 ? d.decode3() : d.decode0());
  return out;
}

// Limits, the same as the server's codec (rtmp/amf).
const MAX_DEPTH = 64;
const MAX_SIZE = 64 << 20; // logical size: one unit per value + bytes of strings, references counted again
const MAX_DATE_MS = 8.64e15;

class AMFDecoder {
  constructor(b, off = 0, end = b.length, limits = {}) {
    this.r = new Reader(b, off, end);
    this.maxDepth = limits.maxDepth || MAX_DEPTH;
    this.maxSize = limits.maxSize || MAX_SIZE;
    this.refs0 = [];
    this.strs = [];
    this.objs = [];
    this.traits = [];
    this.depth = 0;
    this.size = 0;
  }
  grow(n) {
    this.size += n;
    if (this.size > this.maxSize) throw new AMFError("toolarge", `offset ${this.r.off}: value too large once references are expanded`);
  }
  enter() {
    if (++this.depth > this.maxDepth) throw new AMFError("depth", `offset ${this.r.off}: nesting too deep`);
  }
  leave() { this.depth--; }
  needCount(count, size) {
    if (count * size > this.r.left()) throw new AMFError("truncated", `count ${count} at offset ${this.r.off}: truncated input`);
  }
  decode0() { this.depth = 0; this.size = 0; return this.value0(); }
  decode3() { this.depth = 0; this.size = 0; return this.value3(); }

  value0() {
    const r = this.r;
    const at = r.off;
    const m = r.u8();
    this.grow(1);
    switch (m) {
      case 0x00: return r.f64();
      case 0x01: return r.u8() !== 0;
      case 0x02: { const s = r.str(r.u16()); this.grow(s.length); return s; }
      case 0x0c: { const s = r.str(r.u32()); this.grow(s.length); return s; }
      case 0x0f: { const s = r.str(r.u32()); this.grow(s.length); return new AMFXMLDocument(s); }
      case 0x05: return null;
      case 0x06: return undefined;
      case 0x0d: return undefined; // unsupported: JavaScript has no such value
      case 0x0b: {
        const ms = r.f64();
        r.u16(); // time zone, unused by every player
        return toDate(ms);
      }
      case 0x03: case 0x08: case 0x0a: case 0x10: return this.complex0(m);
      case 0x07: {
        const idx = r.u16();
        if (idx >= this.refs0.length) throw new AMFError("invalid", `reference at offset ${at}: index ${idx} out of range`);
        const e = this.refs0[idx];
        if (!e.done) throw new AMFError("invalid", `reference at offset ${at}: object ${idx} refers to itself`);
        this.grow(e.size - 1);
        return e.v;
      }
      case 0x11: return this.value3();
      case 0x09: throw new AMFError("invalid", `offset ${at}: object end marker outside an object`);
      default: throw new AMFError("invalid", `offset ${at}: unsupported AMF0 marker 0x${m.toString(16)}`);
    }
  }
  complex0(m) {
    this.enter();
    const idx = this.refs0.length;
    const entry = { v: undefined, size: 0, done: false };
    this.refs0.push(entry);
    const start = this.size - 1;
    let v;
    if (m === 0x03) v = this.props0({}, false);
    else if (m === 0x08) { this.r.u32(); v = this.props0(amf.ecmaArray({}), true); }
    else if (m === 0x10) {
      const cls = this.r.str(this.r.u16());
      this.grow(cls.length);
      v = this.props0(amf.typedObject(cls, {}), false);
    } else {
      const n = this.r.u32();
      this.needCount(n, 1);
      v = [];
      for (let i = 0; i < n; i++) v.push(this.value0());
    }
    entry.v = v; entry.size = this.size - start; entry.done = true;
    this.leave();
    return v;
  }
  props0(obj, ecma) {
    const r = this.r;
    for (;;) {
      if (ecma && r.left() === 0) return obj; // some encoders leave the end marker out
      const key = r.str(r.u16());
      if (key === "" && r.peek() === 0x09) { r.off++; return obj; }
      this.grow(key.length);
      defineProp(obj, key, this.value0());
    }
  }

  u29() {
    const r = this.r;
    let v = 0;
    for (let i = 0; i < 3; i++) {
      const b = r.u8();
      if (b < 0x80) return (v << 7) | b;
      v = (v << 7) | (b & 0x7f);
    }
    return ((v << 8) | r.u8()) >>> 0;
  }
  str3() {
    const h = this.u29();
    if ((h & 1) === 0) {
      const i = h >>> 1;
      if (i >= this.strs.length) throw new AMFError("invalid", `string reference ${i} out of range`);
      return this.strs[i];
    }
    const n = h >>> 1;
    const s = this.r.str(n);
    if (n > 0) this.strs.push(s);
    return s;
  }
  objRef(h) {
    const i = h >>> 1;
    if (i >= this.objs.length) throw new AMFError("invalid", `object reference ${i} out of range`);
    const e = this.objs[i];
    if (!e.done) throw new AMFError("invalid", `object reference ${i} refers to an object being decoded`);
    this.grow(e.size - 1);
    return e.v;
  }
  addObj() { const e = { v: undefined, size: 0, done: false }; this.objs.push(e); return e; }
  finish(e, start, v) { e.v = v; e.size = this.size - start; e.done = true; return v; }

  value3() {
    const r = this.r;
    const at = r.off;
    const m = r.u8();
    this.grow(1);
    const start = this.size - 1;
    switch (m) {
      case 0x00: return undefined;
      case 0x01: return null;
      case 0x02: return false;
      case 0x03: return true;
      case 0x04: { const v = this.u29(); return v & 0x10000000 ? v - 0x20000000 : v; }
      case 0x05: return r.f64();
      case 0x06: { const s = this.str3(); this.grow(s.length); return s; }
      case 0x07: case 0x0b: case 0x0c: case 0x08: {
        const h = this.u29();
        if ((h & 1) === 0) return this.objRef(h);
        const e = this.addObj();
        let v;
        if (m === 0x08) v = toDate(r.f64());
        else if (m === 0x0c) { v = r.bytes(h >>> 1); this.grow(v.length); }
        else { const s = r.str(h >>> 1); this.grow(s.length); v = m === 0x07 ? new AMFXMLDocument(s) : new AMFXML(s); }
        return this.finish(e, start, v);
      }
      case 0x09: return this.array3(start);
      case 0x0a: return this.object3(start);
      case 0x0d: case 0x0e: case 0x0f: case 0x10: return this.vector3(m, start);
      case 0x11: return this.dict3(start);
      default: throw new AMFError("invalid", `offset ${at}: unsupported AMF3 marker 0x${m.toString(16)}`);
    }
  }
  array3(start) {
    const h = this.u29();
    if ((h & 1) === 0) return this.objRef(h);
    this.enter();
    const e = this.addObj();
    const n = h >>> 1;
    const arr = [];
    for (;;) {
      const key = this.str3();
      if (key === "") break;
      this.grow(key.length);
      defineProp(arr, key, this.value3());
    }
    this.needCount(n, 1);
    for (let i = 0; i < n; i++) arr[i] = this.value3();
    this.leave();
    // An array with named members only is what an AMF0 ECMA array becomes
    // in AMF3 (metadata, info objects' data): a plain object reads better.
    if (n === 0 && Object.keys(arr).length > 0) {
      const obj = amf.ecmaArray({});
      for (const k of Object.keys(arr)) defineProp(obj, k, arr[k]);
      return this.finish(e, start, obj);
    }
    return this.finish(e, start, arr);
  }
  object3(start) {
    const h = this.u29();
    if ((h & 1) === 0) return this.objRef(h);
    this.enter();
    const e = this.addObj();
    let tr;
    if ((h & 2) === 0) {
      const i = h >>> 2;
      if (i >= this.traits.length) throw new AMFError("invalid", `trait reference ${i} out of range`);
      tr = this.traits[i];
    } else {
      const ext = (h & 4) !== 0;
      const dyn = (h & 8) !== 0;
      const n = h >>> 4;
      this.needCount(n, 1);
      const cls = this.str3();
      const names = [];
      for (let i = 0; i < n; i++) names.push(this.str3());
      tr = { cls, ext, dyn, names };
      this.traits.push(tr);
    }
    this.grow(tr.cls.length);
    let obj;
    if (tr.ext) {
      if (tr.cls !== CLASS_ARRAY_COLLECTION && tr.cls !== CLASS_OBJECT_PROXY) {
        throw new AMFError("invalid", `externalizable class ${JSON.stringify(tr.cls.slice(0, 40))} is not supported`);
      }
      obj = amf.typedObject(tr.cls, {});
      e.v = obj; // not done: a reference to it from inside is a cycle
      defineProp(obj, tr.cls === CLASS_ARRAY_COLLECTION ? "source" : "object", this.value3());
    } else {
      obj = tr.cls === "" ? {} : amf.typedObject(tr.cls, {});
      this.needCount(tr.names.length, 1);
      for (const name of tr.names) {
        this.grow(name.length);
        defineProp(obj, name, this.value3());
      }
      if (tr.dyn) {
        for (;;) {
          const key = this.str3();
          if (key === "") break;
          this.grow(key.length);
          defineProp(obj, key, this.value3());
        }
      }
    }
    this.leave();
    return this.finish(e, start, obj);
  }
  vector3(m, start) {
    const h = this.u29();
    if ((h & 1) === 0) return this.objRef(h);
    const e = this.addObj();
    const n = h >>> 1;
    const fixed = this.r.u8() !== 0;
    let v;
    if (m === 0x0d || m === 0x0e) {
      this.needCount(n, 4);
      v = m === 0x0d ? new Int32Array(n) : new Uint32Array(n);
      for (let i = 0; i < n; i++) v[i] = m === 0x0d ? this.r.i32() : this.r.u32();
      this.grow(n);
    } else if (m === 0x0f) {
      this.needCount(n, 8);
      v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = this.r.f64();
      this.grow(n);
    } else {
      this.enter();
      const cls = this.str3();
      this.grow(cls.length);
      this.needCount(n, 1);
      v = amf.vector(cls, [], fixed);
      for (let i = 0; i < n; i++) v.push(this.value3());
      this.leave();
    }
    if (fixed && m !== 0x10) amf.fixed(v);
    return this.finish(e, start, v);
  }
  dict3(start) {
    const h = this.u29();
    if ((h & 1) === 0) return this.objRef(h);
    const e = this.addObj();
    const n = h >>> 1;
    const weak = this.r.u8() !== 0;
    this.enter();
    this.needCount(n, 2);
    const map = new Map();
    if (weak) amf.weakKeys(map);
    for (let i = 0; i < n; i++) {
      const k = this.value3();
      map.set(k, this.value3());
    }
    this.leave();
    return this.finish(e, start, map);
  }
}

// defineProp sets a property even when its name is "__proto__".
function defineProp(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
}

function toDate(ms) {
  if (Number.isNaN(ms) || ms > MAX_DATE_MS || ms < -MAX_DATE_MS) throw new AMFError("invalid", `date ${ms} out of range`);
  return new Date(Math.trunc(ms));
}

function isIndexKey(k) { return /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 4294967295; }

// namedKeys returns the own enumerable non-index keys of an array.
function namedKeys(arr) { return Object.keys(arr).filter((k) => !isIndexKey(k)); }

class AMFEncoder {
  constructor() {
    this.w = new Writer();
    this.depth = 0;
    // AMF3 tables, kept across AVM+ switches of one message.
    this.strs = new Map();
    this.objs = new Map();
    this.traits = new Map();
  }
  enter() {
    if (++this.depth > MAX_DEPTH) throw new AMFError("depth", "nesting too deep (or a cycle)");
  }
  leave() { this.depth--; }

  encode0(v) {
    const w = this.w;
    if (v === undefined) return w.u8(0x06);
    if (v === null) return w.u8(0x05);
    switch (typeof v) {
      case "number": w.u8(0x00); w.f64(v); return;
      case "boolean": w.u8(0x01); w.u8(v ? 1 : 0); return;
      case "string": {
        const b = utf8(v);
        if (b.length > 0xffff) { w.u8(0x0c); w.u32(b.length); } else { w.u8(0x02); w.u16(b.length); }
        w.bytes(b);
        return;
      }
      case "bigint": w.u8(0x00); w.f64(Number(v)); return;
      case "object": break;
      default: throw new AMFError("unencodable", `cannot encode a ${typeof v}`);
    }
    if (v instanceof AVMPlus) { w.u8(0x11); return this.encode3(v.value); }
    if (v instanceof Date) { w.u8(0x0b); w.f64(dateMillis(v)); w.u16(0); return; }
    if (v instanceof AMFXMLDocument) { const b = utf8(v.text); w.u8(0x0f); w.u32(b.length); w.bytes(b); return; }
    const m = metaOf(v);
    if (Array.isArray(v) && !m && namedKeys(v).length === 0) {
      this.enter();
      w.u8(0x0a); w.u32(v.length);
      for (let i = 0; i < v.length; i++) this.encode0(v[i]);
      this.leave();
      return;
    }
    if (!Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer) && !(v instanceof Map) && !(v instanceof AMFXML)) {
      this.enter();
      if (m && m.kind === "ecma") { const keys = Object.keys(v); w.u8(0x08); w.u32(keys.length); }
      else if (m && m.kind === "typed" && m.className !== "") { const b = utf8(m.className); if (b.length > 0xffff) throw new AMFError("unencodable", "class name too long"); w.u8(0x10); w.u16(b.length); w.bytes(b); }
      else w.u8(0x03);
      for (const k of Object.keys(v)) {
        const kb = utf8(k);
        if (kb.length > 0xffff) throw new AMFError("unencodable", "key too long");
        w.u16(kb.length); w.bytes(kb);
        this.encode0(v[k]);
      }
      w.u16(0); w.u8(0x09);
      this.leave();
      return;
    }
    // Byte arrays, vectors, dictionaries, E4X XML and arrays with named
    // members exist only in AMF3: write them behind an AVM+ switch.
    w.u8(0x11);
    this.encode3(v);
  }

  u29(v) {
    const w = this.w;
    v &= 0x1fffffff;
    if (v < 0x80) w.u8(v);
    else if (v < 0x4000) { w.u8((v >> 7) | 0x80); w.u8(v & 0x7f); }
    else if (v < 0x200000) { w.u8((v >> 14) | 0x80); w.u8(((v >> 7) & 0x7f) | 0x80); w.u8(v & 0x7f); }
    else { w.u8((v >> 22) | 0x80); w.u8(((v >> 15) & 0x7f) | 0x80); w.u8(((v >> 8) & 0x7f) | 0x80); w.u8(v & 0xff); }
  }
  len29(n) {
    if (n > 0x0fffffff) throw new AMFError("unencodable", "length beyond 2^28-1");
    this.u29((n << 1) | 1);
  }
  str3(s) {
    if (s === "") { this.w.u8(0x01); return; }
    const i = this.strs.get(s);
    if (i !== undefined) { this.u29(i << 1); return; }
    this.strs.set(s, this.strs.size);
    const b = utf8(s);
    this.len29(b.length);
    this.w.bytes(b);
  }
  // ref writes an object reference if o was written before, else takes a slot.
  ref(o) {
    const i = this.objs.get(o);
    if (i !== undefined) { this.u29(i << 1); return true; }
    this.objs.set(o, this.objs.size);
    return false;
  }

  encode3(v) {
    const w = this.w;
    if (v === undefined) return w.u8(0x00);
    if (v === null) return w.u8(0x01);
    switch (typeof v) {
      case "boolean": w.u8(v ? 0x03 : 0x02); return;
      case "number":
        if (Number.isInteger(v) && v >= -0x10000000 && v < 0x10000000 && !Object.is(v, -0)) { w.u8(0x04); this.u29(v); }
        else { w.u8(0x05); w.f64(v); }
        return;
      case "bigint": w.u8(0x05); w.f64(Number(v)); return;
      case "string": w.u8(0x06); this.str3(v); return;
      case "object": break;
      default: throw new AMFError("unencodable", `cannot encode a ${typeof v}`);
    }
    if (v instanceof AVMPlus) return this.encode3(v.value);
    if (v instanceof Date) { w.u8(0x08); if (!this.ref(v)) { w.u8(0x01); w.f64(dateMillis(v)); } return; }
    if (v instanceof AMFXMLDocument || v instanceof AMFXML) {
      w.u8(v instanceof AMFXML ? 0x0b : 0x07);
      if (!this.ref(v)) { const b = utf8(v.text); this.len29(b.length); w.bytes(b); }
      return;
    }
    const m = metaOf(v);
    if (v instanceof ArrayBuffer || v instanceof Uint8Array) {
      w.u8(0x0c);
      if (!this.ref(v)) { const b = v instanceof ArrayBuffer ? new Uint8Array(v) : v; this.len29(b.length); w.bytes(b); }
      return;
    }
    if (v instanceof Int32Array || v instanceof Uint32Array || v instanceof Float64Array) {
      w.u8(v instanceof Int32Array ? 0x0d : v instanceof Uint32Array ? 0x0e : 0x0f);
      if (this.ref(v)) return;
      this.len29(v.length);
      w.u8(m && m.fixed ? 1 : 0);
      for (const x of v) { if (v instanceof Float64Array) w.f64(x); else w.u32(x >>> 0); }
      return;
    }
    if (ArrayBuffer.isView(v)) throw new AMFError("unencodable", `cannot encode a ${v.constructor.name}`);
    if (v instanceof Map) {
      w.u8(0x11);
      if (this.ref(v)) return;
      this.enter();
      this.len29(v.size);
      w.u8(m && m.weakKeys ? 1 : 0);
      for (const [k, x] of v) { this.encode3(k); this.encode3(x); }
      this.leave();
      return;
    }
    if (Array.isArray(v) && m && m.kind === "vector") {
      w.u8(0x10);
      if (this.ref(v)) return;
      this.enter();
      this.len29(v.length);
      w.u8(m.fixed ? 1 : 0);
      this.str3(m.className);
      for (const x of v) this.encode3(x);
      this.leave();
      return;
    }
    if (Array.isArray(v) || (m && m.kind === "ecma")) {
      w.u8(0x09);
      if (this.ref(v)) return;
      this.enter();
      const dense = Array.isArray(v) ? v.length : 0;
      const named = Array.isArray(v) ? namedKeys(v) : Object.keys(v);
      this.len29(dense);
      for (const k of named) {
        if (k === "") throw new AMFError("unencodable", "empty key in an AMF3 array");
        this.str3(k);
        this.encode3(v[k]);
      }
      w.u8(0x01);
      for (let i = 0; i < dense; i++) this.encode3(v[i]);
      this.leave();
      return;
    }
    // Objects: anonymous ones are dynamic with no sealed members; typed ones
    // have every property sealed (as the server's encoder does).
    w.u8(0x0a);
    if (this.ref(v)) return;
    this.enter();
    const cls = m && m.kind === "typed" ? m.className : "";
    const keys = Object.keys(v);
    if ((cls === CLASS_ARRAY_COLLECTION && keys.length === 1 && keys[0] === "source") ||
        (cls === CLASS_OBJECT_PROXY && keys.length === 1 && keys[0] === "object")) {
      const tk = "e:" + cls;
      const ti = this.traits.get(tk);
      if (ti !== undefined) this.u29((ti << 2) | 1);
      else { this.traits.set(tk, this.traits.size); this.w.u8(0x07); this.str3(cls); }
      this.encode3(v[keys[0]]);
      this.leave();
      return;
    }
    if (cls === "" && !keys.includes("")) {
      const ti = this.traits.get("d:");
      if (ti !== undefined) this.u29((ti << 2) | 1);
      else { this.traits.set("d:", this.traits.size); this.w.u8(0x0b); this.str3(""); }
      for (const k of keys) {
        this.str3(k);
        this.encode3(v[k]);
      }
      this.w.u8(0x01);
    } else {
      // Typed objects, and anonymous ones with an empty key (which would
      // end a dynamic member list), have every member sealed.
      const tk = "s:" + JSON.stringify([cls, keys]);
      const ti = this.traits.get(tk);
      if (ti !== undefined) this.u29((ti << 2) | 1);
      else {
        this.traits.set(tk, this.traits.size);
        this.u29((keys.length << 4) | 0x03);
        this.str3(cls);
        for (const k of keys) this.str3(k);
      }
      for (const k of keys) this.encode3(v[k]);
    }
    this.leave();
  }
}

function dateMillis(d) {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new AMFError("unencodable", "invalid Date");
  return ms;
}

// ---------------------------------------------------------------------------
// RTMP: handshake, chunk stream, messages

/** RTMP message types used here. */
export const MessageType = Object.freeze({
  SET_CHUNK_SIZE: 1, ABORT: 2, ACK: 3, USER_CONTROL: 4, WINDOW_ACK_SIZE: 5, SET_PEER_BANDWIDTH: 6,
  AUDIO: 8, VIDEO: 9, DATA_AMF3: 15, SO_AMF3: 16, COMMAND_AMF3: 17, DATA_AMF0: 18, SO_AMF0: 19,
  COMMAND_AMF0: 20, AGGREGATE: 22,
});

const HANDSHAKE_SIZE = 1536;
const EXTENDED = 0xffffff;
/** Largest chunk size accepted from the server (as the server's own limit). */
const MAX_CHUNK_SIZE = 0xffffff;
const MAX_CHUNK_STREAMS = 256;

/** C0+C1 of the simple handshake: version 3, time, zero, random bytes. */
export function handshakeC0C1(time = 0, random = null) {
  const b = new Uint8Array(1 + HANDSHAKE_SIZE);
  b[0] = 3;
  new DataView(b.buffer).setUint32(1, time >>> 0);
  // b[5..8] stay zero: a simple (not digest) handshake.
  if (random) b.set(random.subarray(0, HANDSHAKE_SIZE - 8), 9);
  else if (globalThis.crypto && crypto.getRandomValues) crypto.getRandomValues(b.subarray(9));
  return b;
}

/**
 * Handshake consumes S0+S1+S2. push(bytes) returns
 * {c2?: Uint8Array (to send once S1 is in), done: bool, rest: Uint8Array}.
 */
export class Handshake {
  constructor() { this.buf = new Uint8Array(0); this.sentC2 = false; this.done = false; }
  push(bytes) {
    this.buf = this.buf.length ? concatBytes([this.buf, bytes]) : bytes;
    const out = { c2: null, done: false, rest: null };
    if (this.buf.length >= 1 && this.buf[0] !== 3) throw new Error(`handshake: server version ${this.buf[0]}, want 3`);
    if (!this.sentC2 && this.buf.length >= 1 + HANDSHAKE_SIZE) {
      // C2 echoes S1 (its time and random bytes), as the simple handshake asks.
      out.c2 = this.buf.slice(1, 1 + HANDSHAKE_SIZE);
      this.sentC2 = true;
    }
    if (this.buf.length >= 1 + 2 * HANDSHAKE_SIZE) {
      this.done = out.done = true;
      out.rest = this.buf.subarray(1 + 2 * HANDSHAKE_SIZE);
      this.buf = new Uint8Array(0);
    }
    return out;
  }
}

/** Error of the RTMP layer: kind "protocol" or "limit". */
export class RTMPError extends Error {
  constructor(kind, message) { super(message); this.name = "RTMPError"; this.kind = kind; }
}

/**
 * ChunkReader reassembles messages from the chunk stream. It applies Set
 * Chunk Size and Abort itself (they change how the next bytes read) and still
 * returns them. Limits: maxMessageSize per message, maxPartial bytes of
 * unfinished messages over all chunk streams, MAX_CHUNK_STREAMS streams.
 */
export class ChunkReader {
  constructor({ maxMessageSize = 16 << 20, maxPartial = 32 << 20 } = {}) {
    this.chunkSize = 128;
    this.maxMessageSize = maxMessageSize;
    this.maxPartial = maxPartial;
    this.partial = 0;
    this.streams = new Map();
    this.buf = new Uint8Array(0);
    this.off = 0;
  }
  /** push appends bytes and returns the messages completed: [{type, streamId, timestamp, payload, csid}]. */
  push(bytes) {
    if (this.off < this.buf.length) this.buf = concatBytes([this.buf.subarray(this.off), bytes]);
    else this.buf = bytes;
    this.off = 0;
    const out = [];
    while (this.chunk(out));
    return out;
  }
  stream(csid) {
    let s = this.streams.get(csid);
    if (!s) {
      if (this.streams.size >= MAX_CHUNK_STREAMS) throw new RTMPError("limit", `more than ${MAX_CHUNK_STREAMS} chunk streams`);
      s = { csid, seen: false, active: false, ts: 0, delta: 0, len: 0, type: 0, msid: 0, ext: false, extValue: 0, parts: [], got: 0 };
      this.streams.set(csid, s);
    }
    return s;
  }
  // chunk parses one chunk at this.off; false when more bytes are needed.
  chunk(out) {
    const b = this.buf;
    let p = this.off;
    const avail = b.length - p;
    if (avail < 1) return false;
    const fmt = b[p] >> 6;
    let csid = b[p] & 0x3f;
    p++;
    if (csid === 0) { if (b.length - p < 1) return false; csid = 64 + b[p]; p++; }
    else if (csid === 1) { if (b.length - p < 2) return false; csid = 64 + b[p] + (b[p + 1] << 8); p += 2; }
    const s = this.stream(csid);
    const hsize = [11, 7, 3, 0][fmt];
    if (b.length - p < hsize) return false;
    let field = 0, value = 0, len = s.len, type = s.type, msid = s.msid;
    let extended = false;
    if (fmt < 3) {
      if (fmt === 2 && !s.seen) throw new RTMPError("protocol", `chunk stream ${csid}: format-2 chunk without a previous header`);
      field = (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
      if (fmt < 2) { len = (b[p + 3] << 16) | (b[p + 4] << 8) | b[p + 5]; type = b[p + 6]; }
      if (fmt === 0) msid = (b[p + 7] | (b[p + 8] << 8) | (b[p + 9] << 16) | (b[p + 10] << 24)) >>> 0;
      p += hsize;
      value = field;
      if (field === EXTENDED) {
        if (b.length - p < 4) return false;
        value = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
        p += 4;
        extended = true;
      }
    } else {
      if (!s.seen) throw new RTMPError("protocol", `chunk stream ${csid}: format-3 chunk without a previous header`);
      if (s.ext) {
        // The extended field repeats in format-3 chunks (as Flash and the
        // server send it); skip it when the next 4 bytes are that value.
        if (b.length - p < 4) return false;
        const v = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
        if (v === s.extValue) p += 4;
      }
    }
    // Size of this chunk's payload.
    const starting = fmt < 3 || !s.active;
    const remaining = starting ? len : s.len - s.got;
    const n = Math.min(this.chunkSize, remaining);
    if (starting && len > this.maxMessageSize) throw new RTMPError("limit", `chunk stream ${csid}: message of ${len} bytes exceeds the limit of ${this.maxMessageSize}`);
    if (b.length - p < n) return false;
    // The whole chunk is here: commit the header.
    if (fmt < 3) {
      if (s.active) this.drop(s); // a new header mid-message: the peer gave up on it
      if (fmt === 0) s.ts = value; else s.ts = (s.ts + value) >>> 0;
      s.len = len; s.type = type; s.msid = msid;
      s.delta = value; s.ext = extended; s.extValue = value; s.seen = true;
      this.begin(s);
    } else if (!s.active) {
      s.ts = (s.ts + s.delta) >>> 0;
      this.begin(s);
    }
    if (n > 0) { s.parts.push(b.subarray(p, p + n)); s.got += n; this.partial += n; }
    p += n;
    this.off = p;
    if (s.got === s.len) {
      const payload = s.parts.length === 1 ? s.parts[0].slice() : concatBytes(s.parts);
      this.partial -= s.got;
      s.parts = []; s.got = 0; s.active = false;
      const m = { type: s.type, streamId: s.msid, timestamp: s.ts, payload, csid };
      this.control(m);
      out.push(m);
    }
    return true;
  }
  begin(s) {
    if (this.partial + s.len > this.maxPartial) throw new RTMPError("limit", `partial messages would hold ${this.partial + s.len} bytes`);
    s.active = true; s.parts = []; s.got = 0;
  }
  drop(s) { this.partial -= s.got; s.parts = []; s.got = 0; s.active = false; }
  control(m) {
    if (m.streamId !== 0 && m.type <= 2) return;
    if (m.type === MessageType.SET_CHUNK_SIZE) {
      if (m.payload.length < 4) throw new RTMPError("protocol", "SetChunkSize too short");
      const n = new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0) & 0x7fffffff;
      if (n === 0 || n > MAX_CHUNK_SIZE) throw new RTMPError("protocol", `SetChunkSize ${n} out of range`);
      this.chunkSize = n;
    } else if (m.type === MessageType.ABORT) {
      if (m.payload.length < 4) throw new RTMPError("protocol", "Abort too short");
      const s = this.streams.get(new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0));
      if (s && s.active) this.drop(s);
    }
  }
}

/**
 * ChunkWriter splits messages into chunks, compressing headers as the
 * server's writer does: format 0 for a new chunk stream, another message
 * stream, a timestamp going back or a large delta; format 1 when length or
 * type change; format 2 when the delta changes; format 3 when it repeats.
 */
export class ChunkWriter {
  constructor() { this.chunkSize = 128; this.streams = new Map(); }
  /** write returns the chunk bytes of one message {csid, type, streamId, timestamp, payload}. */
  write({ csid, type, streamId = 0, timestamp = 0, payload }) {
    if (csid < 2 || csid > 65599) throw new RTMPError("protocol", `bad chunk stream id ${csid}`);
    if (payload.length > 0xffffff) throw new RTMPError("limit", `message of ${payload.length} bytes is too large`);
    const ts = timestamp >>> 0;
    let s = this.streams.get(csid);
    const first = !s;
    if (!s) { s = { ts: 0, delta: 0, len: 0, type: 0, msid: 0, deltaSet: false }; this.streams.set(csid, s); }
    const delta = (ts - s.ts) >>> 0;
    let fmt;
    if (first || s.msid !== streamId || ts < s.ts || delta >= EXTENDED) fmt = 0;
    else if (s.len !== payload.length || s.type !== type) fmt = 1;
    else if (!s.deltaSet || s.delta !== delta) fmt = 2;
    else fmt = 3;
    const field = fmt === 0 ? ts : delta;
    const extended = fmt === 0 && field >= EXTENDED;
    const w = new Writer(payload.length + 32);
    const basic = (f) => {
      if (csid < 64) w.u8((f << 6) | csid);
      else if (csid < 320) { w.u8(f << 6); w.u8(csid - 64); }
      else { w.u8((f << 6) | 1); w.u8((csid - 64) & 0xff); w.u8((csid - 64) >> 8); }
    };
    basic(fmt);
    if (fmt < 3) {
      w.u24(Math.min(field, EXTENDED));
      if (fmt < 2) { w.u24(payload.length); w.u8(type); }
      if (fmt === 0) w.u32le(streamId);
      if (extended) w.u32(field);
    }
    let off = Math.min(this.chunkSize, payload.length);
    w.bytes(payload.subarray(0, off));
    while (off < payload.length) {
      basic(3);
      if (extended) w.u32(field);
      const n = Math.min(this.chunkSize, payload.length - off);
      w.bytes(payload.subarray(off, off + n));
      off += n;
    }
    s.ts = ts; s.len = payload.length; s.type = type; s.msid = streamId;
    if (fmt === 1 || fmt === 2) { s.delta = delta; s.deltaSet = true; }
    else if (fmt === 0) { s.deltaSet = false; }
    return w.result();
  }
}

function u32Payload(...vals) { const w = new Writer(4 * vals.length); for (const v of vals) w.u32(v); return w.result(); }

// Command and data payloads. AMF3 messages (types 17, 15, 16) start with a
// zero byte; their values are AMF0, switching to AMF3 (0x11) for arguments.

function decodeCommand(m, limits) {
  let off = 0;
  if (m.type === MessageType.COMMAND_AMF3 || m.type === MessageType.DATA_AMF3) {
    if (m.payload.length > 0 && m.payload[0] === 0) off = 1;
  }
  const d = new AMFDecoder(m.payload, off, m.payload.length, limits);
  const vals = [];
  while (d.r.left() > 0) vals.push(d.decode0());
  return vals;
}

// encodeValues writes AMF0 values; with amf3, values after the first
// `plain` ones go behind AVM+ switches, as Flash Player does.
function encodeValues(vals, amf3, plain) {
  const e = new AMFEncoder();
  if (amf3) e.w.u8(0);
  vals.forEach((v, i) => { if (amf3 && i >= plain && v !== null && v !== undefined) { e.w.u8(0x11); e.encode3(v); } else e.encode0(v); });
  return e.w.result();
}

// Shared object messages (types 19 and 16). Event types as the server's
// codec (rtmp/message/sharedobject.go).
export const SOEvent = Object.freeze({
  USE: 1, RELEASE: 2, REQUEST_CHANGE: 3, CHANGE: 4, SUCCESS: 5, SEND_MESSAGE: 6, STATUS: 7,
  CLEAR: 8, REMOVE: 9, REQUEST_REMOVE: 10, USE_SUCCESS: 11,
});

/** encodeSharedObject returns the payload of a shared object message. */
export function encodeSharedObject({ name, version = 0, persistent = false, events = [] }, amf3) {
  const e = new AMFEncoder();
  const w = e.w;
  if (amf3) w.u8(0);
  const nb = utf8(name);
  if (nb.length > 0xffff) throw new AMFError("unencodable", "shared object name too long");
  w.u16(nb.length); w.bytes(nb);
  w.u32(version); w.u32(persistent ? 2 : 0); w.u32(0);
  const key = (k) => { const kb = utf8(k); if (kb.length > 0xffff) throw new AMFError("unencodable", "slot name too long"); w.u16(kb.length); w.bytes(kb); };
  for (const ev of events) {
    w.u8(ev.type);
    const at = w.len;
    w.u32(0);
    switch (ev.type) {
      case SOEvent.REQUEST_CHANGE: case SOEvent.CHANGE:
        key(ev.name); amf3 ? e.encode3(ev.value) : e.encode0(ev.value); break;
      case SOEvent.SUCCESS: case SOEvent.REMOVE: case SOEvent.REQUEST_REMOVE:
        key(ev.name); break;
      case SOEvent.SEND_MESSAGE:
        e.encode0(String(ev.handler));
        for (const a of ev.args || []) amf3 ? e.encode3(a) : e.encode0(a);
        break;
      case SOEvent.STATUS:
        key(ev.code); key(ev.level); break;
      default: break;
    }
    w.view.setUint32(at, w.len - at - 4);
  }
  return w.result();
}

/** decodeSharedObject decodes a shared object message payload. */
export function decodeSharedObject(payload, amf3, limits) {
  const off0 = amf3 ? 1 : 0;
  try {
    return decodeSO(payload, off0, amf3, limits);
  } catch (err) {
    // Some peers send AMF0 values in type 16: read it again that way.
    if (amf3) { try { return decodeSO(payload, off0, false, limits); } catch { /* the first error says more */ } }
    throw err;
  }
}

function decodeSO(payload, off, amf3, limits) {
  const r = new Reader(payload, off);
  const name = r.str(r.u16());
  const version = r.u32();
  const flags = r.u32();
  r.u32();
  const d = new AMFDecoder(payload, 0, payload.length, limits);
  const events = [];
  const value = (end) => { d.r.off = r.off; d.r.end = end; const v = amf3 ? d.decode3() : d.decode0(); r.off = d.r.off; return v; };
  const key = (end) => { if (end - r.off < 2) throw new AMFError("truncated", "key truncated"); const n = r.u16(); if (end - r.off < n) throw new AMFError("truncated", "key truncated"); return r.str(n); };
  while (r.left() > 0) {
    const type = r.u8();
    const n = r.u32();
    if (n > r.left()) throw new AMFError("truncated", `shared object ${name}: event of ${n} bytes, ${r.left()} left`);
    const end = r.off + n;
    switch (type) {
      case SOEvent.REQUEST_CHANGE: case SOEvent.CHANGE:
        do { const k = key(end); events.push({ type, name: k, value: value(end) }); } while (r.off < end);
        break;
      case SOEvent.SUCCESS: case SOEvent.REMOVE: case SOEvent.REQUEST_REMOVE: {
        const ev = { type, name: key(end) };
        if (r.off < end) ev.value = value(end);
        events.push(ev);
        break;
      }
      case SOEvent.SEND_MESSAGE: {
        // The handler name is an AMF0 string, or in AMF3 messages maybe an AMF3 one.
        let handler;
        if (r.off < end && (payload[r.off] === 0x02 || payload[r.off] === 0x0c)) {
          d.r.off = r.off; d.r.end = end; handler = d.decode0(); r.off = d.r.off;
        } else handler = value(end);
        if (typeof handler !== "string") throw new AMFError("invalid", "SendMessage handler is not a string");
        const args = [];
        while (r.off < end) args.push(value(end));
        events.push({ type, handler, args });
        break;
      }
      case SOEvent.STATUS: events.push({ type, code: key(end), level: key(end) }); break;
      default: events.push({ type }); r.off = end; break;
    }
    if (r.off !== end) throw new AMFError("invalid", `shared object ${name}: ${end - r.off} bytes left in an event body`);
  }
  return { name, version, persistent: (flags & 2) !== 0, flags, events };
}

// ---------------------------------------------------------------------------
// Events and helpers

/** The event of NetConnection, NetStream and SharedObject status: e.info is the FMS info object. */
export class NetStatusEvent extends Event {
  constructor(info) { super("netStatus"); this.info = info; }
}
/** SharedObject "sync" event: e.changeList as onSync receives it. */
export class SyncEvent extends Event {
  constructor(changeList) { super("sync"); this.changeList = changeList; }
}
/** "asyncError": a client handler the server invoked is missing or threw. */
export class AsyncErrorEvent extends Event {
  constructor(error) { super("asyncError"); this.error = error; }
}

/** Responder(result, status) as in ActionScript: result(value) or status(info). */
export class Responder {
  constructor(result, status) { this.result = result || null; this.status = status || null; }
}

/** The error callAsync rejects with: the info object's fields, plus Error's. */
export class CallError extends Error {
  constructor(info) {
    const i = info && typeof info === "object" ? info : { level: "error", code: "NetConnection.Call.Failed", description: String(info) };
    super(i.description || i.code || "call failed");
    this.name = "CallError";
    this.info = info;
    for (const k of Object.keys(i)) if (k !== "message" && k !== "name" && k !== "stack") this[k] = i[k];
  }
}

// callSafe runs a user callback; an exception in page code must not break
// the connection's reading of the stream, so it goes to asyncError instead.
function callSafe(target, fn, self, args) {
  try {
    return fn.apply(self, args);
  } catch (err) {
    reportAsync(target, err);
    return undefined;
  }
}
function reportAsync(target, err) {
  try {
    if (target && typeof target.dispatchEvent === "function") target.dispatchEvent(new AsyncErrorEvent(err));
  } catch { /* a listener that throws: nothing more to do */ }
  if (typeof console !== "undefined" && console.error) console.error("rtmphub:", err);
}
function dispatchStatus(target, info) {
  if (typeof target.onStatus === "function") callSafe(target, target.onStatus, target, [info]);
  try { target.dispatchEvent(new NetStatusEvent(info)); } catch (err) { reportAsync(null, err); }
}

// handlerOf returns client[name] if it is a function the peer may call.
// When the client object is the library's own object (the default), its
// built-in methods (close, connect, setProperty, addEventListener...) are
// not handlers: a peer's so.send("close") must not close everyone's object.
function handlerOf(client, self, name) {
  if (typeof name !== "string" || name === "constructor") return null;
  const fn = client[name];
  if (typeof fn !== "function") return null;
  if (client === self) {
    for (let p = Object.getPrototypeOf(self); p; p = Object.getPrototypeOf(p)) {
      if (Object.prototype.hasOwnProperty.call(p, name)) return null;
    }
  }
  return fn;
}

function info(level, code, description, extra) { return Object.assign({ level, code, description }, extra || {}); }

/**
 * parseURL turns a NetConnection URL into the WebSocket URL, the application
 * name and the tcUrl. Accepted: rtmpws://, rtmpwss://, ws://, wss://,
 * rtmp:// (the RTMP port answers WebSockets too), rtmps://, and a path
 * ("/app/inst") on the page's own host.
 */
export function parseURL(url, location = globalThis.location) {
  let u = String(url);
  if (u.startsWith("/")) {
    if (!location || !location.host) throw new Error(`NetConnection: ${u}: a path needs a page location`);
    u = (location.protocol === "https:" ? "rtmpwss://" : "rtmpws://") + location.host + u;
  }
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]+)(\/[^#]*)?$/.exec(u);
  if (!m) throw new Error(`NetConnection: bad URL ${JSON.stringify(u)}`);
  const scheme = m[1].toLowerCase();
  let host = m[2];
  const ws = { rtmpws: "ws", ws: "ws", http: "ws", rtmp: "ws", rtmpwss: "wss", wss: "wss", https: "wss", rtmps: "wss" }[scheme];
  if (!ws) throw new Error(`NetConnection: unsupported scheme ${scheme}: (use rtmpws:// or rtmpwss://)`);
  const hasPort = /:\d+$/.test(host) && !/^\[[^\]]*\]$/.test(host);
  if (!hasPort && scheme === "rtmp") host += ":1935";
  if (!hasPort && scheme === "rtmps") host += ":443";
  const app = (m[3] || "/").slice(1);
  return { wsURL: `${ws}://${host}/rtmp`, app, tcUrl: `${scheme}://${host}/${app}` };
}

// Chunk stream ids of what this client sends.
const CSID_CONTROL = 2, CSID_COMMAND = 3, CSID_STREAM = 8;
const CLIENT_CHUNK_SIZE = 65536;
const FLASH_VER = "WEB 11,1,0,0 (compatible; rtmphub-js/1.0)";

// ---------------------------------------------------------------------------
// NetConnection

/**
 * NetConnection: flash.net.NetConnection over RTMP in a WebSocket.
 * Status codes: NetConnection.Connect.Success, .Rejected (info.application
 * holds the script's object), .Closed, .Failed.
 */
export class NetConnection extends EventTarget {
  constructor() {
    super();
    /** 0 or 3 (default, as Flash Player 9+). Set before connect; the server's answer wins. */
    this.objectEncoding = 3;
    /** The object whose methods the server calls (default: this NetConnection). */
    this.client = this;
    this.onStatus = null;
    this.connected = false;
    this.uri = null;
    /** Largest message accepted from the server, in bytes. */
    this.maxMessageSize = 16 << 20;
    /** Bytes waiting in the WebSocket send buffer before the connection is failed. */
    this.maxBufferedBytes = 16 << 20;
    /** Calls awaiting a result at once; more fail at once with NetConnection.Call.Failed. */
    this.maxPendingCalls = 1024;
    /** Milliseconds for the WebSocket, handshake and connect reply. */
    this.connectTimeout = 30000;
    /** The WebSocket class (default: globalThis.WebSocket). */
    this.WebSocket = null;
    this._reset();
  }
  _reset() {
    this._ws = null;
    this._state = "idle"; // idle | connecting | connected | closed
    this._hs = null;
    this._reader = null;
    this._writer = null;
    this._pending = new Map();
    this._nextTx = 2;
    this._streams = new Map();
    this._sos = new Map();
    this._received = 0;
    this._lastAck = 0;
    this._ackWindow = 2500000;
    this._sentWindow = 0;
    this._rejected = false;
    this._timer = null;
    this._canWrite = false;
  }

  /** connect(url, ...args): args follow the connect object (application.onConnect's extra arguments). */
  connect(url, ...args) {
    if (this._state !== "idle" && this._state !== "closed") this._shutdown(null, true);
    this._reset();
    let target;
    try {
      target = parseURL(url);
    } catch (err) {
      // As Flash: a bad URL throws (ArgumentError); nothing is connecting.
      throw err;
    }
    this.uri = target.tcUrl;
    this._target = target;
    this._connectArgs = args;
    this._amf3 = this.objectEncoding === 3;
    this._state = "connecting";
    const WS = this.WebSocket || globalThis.WebSocket;
    if (!WS) { this._fail("WebSocket is not available"); return; }
    let ws;
    try {
      ws = new WS(target.wsURL, ["rtmp"]);
    } catch (err) {
      this._fail(`WebSocket: ${err && err.message ? err.message : err}`);
      return;
    }
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    this._reader = new ChunkReader({ maxMessageSize: this.maxMessageSize, maxPartial: 2 * this.maxMessageSize });
    this._writer = new ChunkWriter();
    this._hs = new Handshake();
    this._timer = setTimeout(() => this._fail("connect timed out"), this.connectTimeout);
    ws.onopen = () => { if (this._ws === ws) this._sendRaw(handshakeC0C1(Date.now() & 0x7fffffff)); };
    ws.onmessage = (e) => { if (this._ws === ws) this._onData(e.data); };
    ws.onerror = () => {
      // Browsers follow an error with close; node 20's WebSocket does not
      // when the connection is refused: do not wait for it forever.
      setTimeout(() => { if (this._ws === ws) this._onSocketClosed({ code: 1006, reason: "WebSocket error" }); }, 1000);
    };
    ws.onclose = (e) => { if (this._ws === ws) this._onSocketClosed(e); };
  }

  /** call(method, responder, ...args): responder may be null (no reply asked). */
  call(method, responder, ...args) {
    if (this._state !== "connected") {
      if (responder && responder.status) {
        const r = responder;
        queueMicrotask(() => callSafe(this, r.status, r, [info("error", "NetConnection.Call.Failed", "NetConnection is not connected.")]));
      }
      return;
    }
    let tx = 0;
    if (responder) {
      if (this._pending.size >= this.maxPendingCalls) {
        const r = responder;
        queueMicrotask(() => r.status && callSafe(this, r.status, r, [info("error", "NetConnection.Call.Failed", "Too many calls awaiting results.")]));
        return;
      }
      tx = this._nextTx++;
      if (this._nextTx > 0x7fffffff) this._nextTx = 2;
      this._pending.set(tx, responder);
    }
    this._sendCommand(0, [String(method), tx, null, ...args]);
  }

  /** callAsync(method, ...args): a Promise of the result; rejects with a CallError holding the info object. */
  callAsync(method, ...args) {
    return new Promise((resolve, reject) => {
      this.call(method, new Responder(resolve, (i) => reject(new CallError(i))), ...args);
    });
  }

  /** close(): NetConnection.Connect.Closed follows (if it was connected). */
  close() {
    if (this._state === "idle" || this._state === "closed") return;
    const wasConnected = this._state === "connected";
    this._shutdown(null, true);
    if (wasConnected || this._rejected) dispatchStatus(this, info("status", "NetConnection.Connect.Closed", "Connection closed."));
  }

  // --- internals

  _sendRaw(bytes) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return;
    if (ws.bufferedAmount > this.maxBufferedBytes) {
      this._fail(`send buffer over ${this.maxBufferedBytes} bytes`);
      return;
    }
    try { ws.send(bytes); } catch (err) { this._fail(`send: ${err && err.message}`); }
  }
  _sendMessage(m) {
    if (!this._canWrite) return; // nothing is sent before S1 arrives
    let bytes;
    try { bytes = this._writer.write(m); } catch (err) { this._fail(String(err && err.message)); return; }
    this._sendRaw(bytes);
  }
  _sendControl(type, payload) { this._sendMessage({ csid: CSID_CONTROL, type, streamId: 0, timestamp: 0, payload }); }
  _sendCommand(streamId, vals, csid) {
    let payload;
    if (this._amf3) payload = encodeValues(vals, true, 3);
    else payload = encodeValues(vals, false, 0);
    this._sendMessage({ csid: csid || (streamId ? CSID_STREAM : CSID_COMMAND), type: this._amf3 ? MessageType.COMMAND_AMF3 : MessageType.COMMAND_AMF0, streamId, timestamp: 0, payload });
  }
  _sendSO(payload) {
    this._sendMessage({ csid: CSID_COMMAND, type: this._amf3 ? MessageType.SO_AMF3 : MessageType.SO_AMF0, streamId: 0, timestamp: 0, payload });
  }

  _onData(data) {
    let bytes;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else { this._fail("text frame from the server"); return; }
    this._received += bytes.length;
    try {
      if (!this._hs.done) {
        const r = this._hs.push(bytes);
        if (r.c2) this._afterS1(r.c2);
        if (!r.done) return;
        bytes = r.rest;
      }
      const msgs = this._reader.push(bytes);
      for (const m of msgs) {
        if (this._state === "closed" || this._state === "idle") return;
        this._onMessage(m);
      }
    } catch (err) {
      this._fail(`${err && err.name ? err.name + ": " : ""}${err && err.message ? err.message : err}`);
      return;
    }
    // Acknowledge as the server's window asks.
    if (this._ackWindow > 0 && this._received - this._lastAck >= this._ackWindow) {
      this._lastAck = this._received;
      this._sendControl(MessageType.ACK, u32Payload(this._received % 0x100000000));
    }
  }

  // _afterS1 sends C2, our chunk size and the connect command at once.
  _afterS1(c2) {
    this._sendRaw(c2);
    this._canWrite = true; // our messages may follow C2; S2 is still to be read
    this._sendControl(MessageType.SET_CHUNK_SIZE, u32Payload(CLIENT_CHUNK_SIZE));
    this._writer.chunkSize = CLIENT_CHUNK_SIZE;
    const t = this._target;
    const obj = {
      app: t.app,
      flashVer: FLASH_VER,
      tcUrl: t.tcUrl,
      fpad: false,
      capabilities: 239,
      audioCodecs: 3575,
      videoCodecs: 252,
      videoFunction: 1,
      objectEncoding: this._amf3 ? 3 : 0,
    };
    if (globalThis.location && globalThis.location.href) obj.pageUrl = String(globalThis.location.href);
    // connect itself is always AMF0 (type 20); its extra arguments go behind
    // AVM+ switches when the encoding is AMF3, as Flash Player sends them.
    const vals = ["connect", 1, obj, ...this._connectArgs];
    const payload = this._amf3 ? encodeValues(vals, true, 3).subarray(1) : encodeValues(vals, false, 0);
    this._sendMessage({ csid: CSID_COMMAND, type: MessageType.COMMAND_AMF0, streamId: 0, timestamp: 0, payload });
  }

  _onMessage(m) {
    switch (m.type) {
      case MessageType.SET_CHUNK_SIZE: case MessageType.ABORT: case MessageType.ACK: return;
      case MessageType.WINDOW_ACK_SIZE:
        if (m.payload.length >= 4) this._ackWindow = new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0);
        return;
      case MessageType.SET_PEER_BANDWIDTH: {
        if (m.payload.length < 4) return;
        const n = new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0);
        if (n !== this._sentWindow) { this._sentWindow = n; this._sendControl(MessageType.WINDOW_ACK_SIZE, u32Payload(n)); }
        return;
      }
      case MessageType.USER_CONTROL: return this._onUserControl(m);
      case MessageType.COMMAND_AMF0: case MessageType.COMMAND_AMF3:
        return this._onCommand(m, decodeCommand(m));
      case MessageType.DATA_AMF0: case MessageType.DATA_AMF3: {
        const s = this._streams.get(m.streamId);
        if (s) s._onData(decodeCommand(m));
        return;
      }
      case MessageType.SO_AMF0: case MessageType.SO_AMF3: {
        const so = decodeSharedObject(m.payload, m.type === MessageType.SO_AMF3);
        const o = this._sos.get(so.name);
        if (o) o._onMessage(so);
        return;
      }
      case MessageType.AUDIO: case MessageType.VIDEO: case MessageType.AGGREGATE: {
        const s = this._streams.get(m.streamId);
        if (s) s._onMedia(m);
        return;
      }
      default: return;
    }
  }

  _onUserControl(m) {
    if (m.payload.length < 2) return;
    const dv = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
    const ev = dv.getUint16(0);
    if (ev === 6 && m.payload.length >= 6) {
      const w = new Writer(6);
      w.u16(7); w.u32(dv.getUint32(2));
      this._sendControl(MessageType.USER_CONTROL, w.result());
    } else if ((ev === 0 || ev === 1) && m.payload.length >= 6) {
      const s = this._streams.get(dv.getUint32(2));
      if (s) s._onUserControl(ev);
    }
  }

  _onCommand(m, vals) {
    const name = vals[0];
    const tx = typeof vals[1] === "number" ? vals[1] : 0;
    if (typeof name !== "string") return;
    if (name === "_result" || name === "_error") {
      const value = vals.length > 3 ? vals[3] : vals[2];
      if (tx === 1 && this._state === "connecting") return this._onConnectReply(name === "_result", value);
      const r = this._pending.get(tx);
      if (!r) return;
      this._pending.delete(tx);
      const fn = name === "_result" ? r.result : r.status;
      if (typeof fn === "function") callSafe(this, fn, r, vals.length > 4 && name === "_result" ? vals.slice(3) : [value]);
      return;
    }
    if (m.streamId !== 0) {
      const s = this._streams.get(m.streamId);
      if (s) s._onCommand(name, vals.slice(3));
      return;
    }
    if (name === "onStatus") {
      const i = vals[3];
      if (i && typeof i === "object") dispatchStatus(this, i);
      return;
    }
    if (name === "close") { this._shutdown(null, true); dispatchStatus(this, info("status", "NetConnection.Connect.Closed", "Connection closed by the server.")); return; }
    this._serverCall(name, tx, vals.slice(3));
  }

  _onConnectReply(ok, value) {
    clearTimeout(this._timer);
    this._timer = null;
    const i = value && typeof value === "object" ? value : info(ok ? "status" : "error", ok ? "NetConnection.Connect.Success" : "NetConnection.Connect.Rejected", "");
    if (ok) {
      this._state = "connected";
      this.connected = true;
      if (i.objectEncoding === 0 || i.objectEncoding === 3) { this.objectEncoding = i.objectEncoding; this._amf3 = i.objectEncoding === 3; }
      dispatchStatus(this, i);
    } else {
      // As Flash: Rejected, then Closed when the connection goes.
      this._rejected = true;
      this._state = "rejected";
      const ws = this._ws;
      dispatchStatus(this, i);
      if (this._ws !== ws) return; // the page connected again from its handler
      this._shutdown(null, true);
      dispatchStatus(this, info("status", "NetConnection.Connect.Closed", "Connection closed."));
    }
  }

  // _serverCall runs a method the server invoked on the client object and
  // sends its return value (or a promise's) back when the server asked.
  _serverCall(name, tx, args) {
    const client = this.client || this;
    let fn = handlerOf(client, this, name);
    if (!fn && (name === "onBWDone" || name === "onBWCheck")) {
      // The hub's bandwidth check calls these; Flash apps defined them, a
      // page need not.
      fn = name === "onBWCheck" ? () => 0 : () => undefined;
    }
    const reply = (ok, v) => {
      if (tx <= 0 || this._state !== "connected") return;
      this._sendCommand(0, [ok ? "_result" : "_error", tx, null, v]);
    };
    if (typeof fn !== "function") {
      reportAsync(this, new Error(`NetConnection: the server called ${name}, which the client object lacks`));
      reply(false, info("error", "NetConnection.Call.Failed", `Method not found (${name}).`));
      return;
    }
    let result;
    try {
      result = fn.apply(client, args);
    } catch (err) {
      reportAsync(this, err);
      reply(false, info("error", "NetConnection.Call.Failed", String(err && err.message ? err.message : err)));
      return;
    }
    if (result && typeof result.then === "function") {
      result.then((v) => reply(true, v), (err) => reply(false, info("error", "NetConnection.Call.Failed", String(err && err.message ? err.message : err))));
    } else reply(true, result);
  }

  _onSocketClosed(e) {
    const st = this._state;
    if (st === "closed" || st === "idle") return;
    const reason = e && (e.reason || e.code) ? ` (${e.code}${e.reason ? " " + e.reason : ""})` : "";
    if (st === "connected") {
      this._shutdown(null, false);
      dispatchStatus(this, info("status", "NetConnection.Connect.Closed", `Connection closed${reason}.`));
    } else if (st === "rejected") {
      this._shutdown(null, false);
    } else {
      this._fail(`connection closed before the reply to connect${reason}`);
    }
  }

  // _fail ends the connection after an error: Failed if it never connected,
  // Closed (with the reason) if it had.
  _fail(reason) {
    const st = this._state;
    if (st === "closed" || st === "idle") return;
    this._shutdown(reason, true);
    if (st === "connected") dispatchStatus(this, info("status", "NetConnection.Connect.Closed", `Connection closed: ${reason}.`));
    else if (st !== "rejected") dispatchStatus(this, info("error", "NetConnection.Connect.Failed", `Connection failed: ${reason}.`));
  }

  _shutdown(reason, closeSocket) {
    this._state = "closed";
    this.connected = false;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws && closeSocket) { try { ws.close(1000); } catch { /* already closing */ } }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const r of pending) {
      if (r.status) callSafe(this, r.status, r, [info("error", "NetConnection.Call.Failed", reason ? `Connection closed: ${reason}.` : "Connection closed.")]);
    }
    for (const s of [...this._streams.values()]) s._onConnectionClosed();
    this._streams.clear();
    for (const so of [...this._sos.values()]) so._onConnectionClosed();
    this._sos.clear();
  }
}


// ---------------------------------------------------------------------------
// SharedObject

const remoteSOs = new Map(); // "persistent|uri|name" -> SharedObject, as Flash's getRemote

/**
 * SharedObject: flash.net.SharedObject, remote objects only.
 * onSync(list): [{code: "clear"|"change"|"success"|"reject"|"delete", name, oldValue}].
 */
export class SharedObject extends EventTarget {
  /** getRemote(name, uri, persistent): the same object for the same arguments, as in Flash. */
  static getRemote(name, uri, persistent = false) {
    const key = `${persistent ? 1 : 0}|${uri}|${name}`;
    let so = remoteSOs.get(key);
    if (!so) { so = new SharedObject(String(name), uri, !!persistent, key); remoteSOs.set(key, so); }
    return so;
  }
  constructor(name, uri, persistent, key) {
    super();
    this.name = name;
    this.uri = uri;
    this.persistent = persistent;
    this._key = key;
    /** Handlers that send() invokes are looked up here (default: this object). */
    this.client = this;
    this.onSync = null;
    this.onStatus = null;
    this.version = 0;
    this._nc = null;
    this._values = {};
    this._pending = new Map(); // slot -> value requested, awaiting Success
    this._lost = new Map();    // slot -> value requested, refused (a late Success restores it)
    this._connected = false;
    const self = this;
    // data: writes and deletes request changes, as assignments to so.data in
    // ActionScript do for a remote shared object.
    this.data = new Proxy(this._values, {
      set(t, k, v) {
        if (typeof k !== "string") { t[k] = v; return true; }
        self.setProperty(k, v);
        return true;
      },
      deleteProperty(t, k) {
        if (typeof k !== "string") { delete t[k]; return true; }
        self.setProperty(k, null);
        return true;
      },
    });
  }

  /** connect(nc): subscribes; the first onSync brings "clear" and a "change" per slot. */
  connect(nc) {
    if (!nc || !nc.connected) throw new Error("SharedObject.connect: the NetConnection is not connected");
    if (this._nc && this._nc !== nc) this._detach();
    this._nc = nc;
    this._amf3 = nc._amf3;
    const other = nc._sos.get(this.name);
    if (other && other !== this) other._detach();
    nc._sos.set(this.name, this);
    this._connected = true;
    this._send([{ type: SOEvent.USE }], 0);
    return true;
  }

  /** setProperty(name, value): a null or undefined value deletes the slot. */
  setProperty(name, value) {
    name = String(name);
    const deleting = value === null || value === undefined;
    if (deleting) delete this._values[name]; else this._values[name] = value;
    if (!this._connected) return;
    this._pending.set(name, deleting ? undefined : value);
    this._lost.delete(name);
    this._send([deleting ? { type: SOEvent.REQUEST_REMOVE, name } : { type: SOEvent.REQUEST_CHANGE, name, value }]);
  }
  /** setDirty(name): sends the slot's current value again (after changing an object inside it). */
  setDirty(name) { this.setProperty(name, this._values[name]); }
  /** clear(): deletes every slot. */
  clear() { for (const k of Object.keys(this._values)) this.setProperty(k, null); }
  /** send(handler, ...args): every subscriber's handler runs, the sender's included. */
  send(handler, ...args) {
    if (!this._connected) return;
    this._send([{ type: SOEvent.SEND_MESSAGE, handler: String(handler), args }]);
  }
  /** close(): unsubscribes; data keeps its last values. */
  close() {
    if (this._connected) this._send([{ type: SOEvent.RELEASE }]);
    this._detach();
    remoteSOs.delete(this._key);
  }

  _send(events, version = this.version) {
    const nc = this._nc;
    if (!nc) return;
    let payload;
    try {
      payload = encodeSharedObject({ name: this.name, version, persistent: this.persistent, events }, this._amf3);
    } catch (err) { reportAsync(this, err); return; }
    nc._sendSO(payload);
  }
  _detach() {
    if (this._nc && this._nc._sos.get(this.name) === this) this._nc._sos.delete(this.name);
    this._nc = null;
    this._connected = false;
    this._pending.clear();
    this._lost.clear();
  }
  _onConnectionClosed() { this._nc = null; this._connected = false; this._pending.clear(); this._lost.clear(); }

  _onMessage(msg) {
    this.version = msg.version;
    const list = [];
    const calls = [];
    for (const ev of msg.events) {
      switch (ev.type) {
        case SOEvent.CLEAR:
          for (const k of Object.keys(this._values)) delete this._values[k];
          list.push({ code: "clear" });
          break;
        case SOEvent.CHANGE: {
          const old = this._values[ev.name];
          this._values[ev.name] = ev.value;
          if (this._pending.has(ev.name)) {
            // Our request lost to another writer (or was refused): the
            // server sends the value that stands.
            this._lost.set(ev.name, this._pending.get(ev.name));
            this._pending.delete(ev.name);
            list.push({ code: "reject", name: ev.name, oldValue: old });
          } else list.push({ code: "change", name: ev.name, oldValue: old });
          break;
        }
        case SOEvent.SUCCESS: {
          const k = ev.name;
          let v;
          if (this._pending.has(k)) { v = this._pending.get(k); this._pending.delete(k); }
          else if (this._lost.has(k)) { v = this._lost.get(k); this._lost.delete(k); }
          else { list.push({ code: "success", name: k, oldValue: null }); break; }
          // A change that seemed lost but was accepted after all: restore it.
          if (v === undefined) delete this._values[k]; else this._values[k] = v;
          list.push({ code: "success", name: k, oldValue: null });
          break;
        }
        case SOEvent.REMOVE: {
          const old = this._values[ev.name];
          delete this._values[ev.name];
          if (this._pending.has(ev.name) && this._pending.get(ev.name) !== undefined) {
            this._lost.set(ev.name, this._pending.get(ev.name));
            this._pending.delete(ev.name);
            list.push({ code: "reject", name: ev.name, oldValue: old });
          } else {
            this._pending.delete(ev.name);
            list.push({ code: "delete", name: ev.name, oldValue: old });
          }
          break;
        }
        case SOEvent.STATUS:
          calls.push(() => dispatchStatus(this, { level: ev.level, code: ev.code }));
          break;
        case SOEvent.SEND_MESSAGE:
          calls.push(() => this._invoke(ev.handler, ev.args));
          break;
        default: break;
      }
    }
    if (list.length > 0) {
      if (typeof this.onSync === "function") callSafe(this, this.onSync, this, [list]);
      try { this.dispatchEvent(new SyncEvent(list)); } catch (err) { reportAsync(null, err); }
    }
    for (const f of calls) f();
  }
  _invoke(handler, args) {
    const c = this.client || this;
    const fn = handlerOf(c, this, handler);
    if (!fn) { reportAsync(this, new Error(`SharedObject ${this.name}: no handler ${handler}`)); return; }
    callSafe(this, fn, c, args);
  }
}

// ---------------------------------------------------------------------------
// FLV remuxing (RTMP media messages -> an FLV byte stream for mpegts.js)

/** flvHeader(hasAudio, hasVideo): the 9-byte FLV header and PreviousTagSize0. */
export function flvHeader(hasAudio, hasVideo) {
  return new Uint8Array([0x46, 0x4c, 0x56, 1, (hasAudio ? 4 : 0) | (hasVideo ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0]);
}
/** flvTag(type, timestamp, data): one FLV tag and its PreviousTagSize. */
export function flvTag(type, timestamp, data) {
  const w = new Writer(15 + data.length);
  w.u8(type); w.u24(data.length);
  w.u24(timestamp & 0xffffff); w.u8((timestamp >>> 24) & 0xff);
  w.u24(0);
  w.bytes(data);
  w.u32(11 + data.length);
  return w.result();
}
/** splitAggregate turns an aggregate message into its media messages. */
export function splitAggregate(m) {
  const out = [];
  const p = m.payload;
  const r = new Reader(p);
  let base = null;
  while (r.left() >= 11) {
    const type = r.u8();
    const size = (r.u8() << 16) | r.u16();
    const ts = ((r.u8() << 16) | r.u16() | (r.u8() << 24)) >>> 0;
    r.off += 3;
    if (r.left() < size) break;
    const payload = p.slice(r.off, r.off + size);
    r.off += size;
    if (r.left() >= 4) r.off += 4;
    if (base === null) base = ts;
    out.push({ type, streamId: m.streamId, timestamp: (m.timestamp + ts - base) >>> 0, payload });
  }
  return out;
}

/**
 * FLVRemuxer collects a stream's tags and decides the FLV header's audio and
 * video flags before writing anything (mpegts.js waits for every track the
 * header announces): from onMetaData's codec ids, or from the media seen.
 */
export class FLVRemuxer {
  constructor({ maxPending = 4 << 20, decideAfterMs = 1000 } = {}) {
    this.maxPending = maxPending;
    this.decideAfterMs = decideAfterMs;
    this.flags = null; // {hasAudio, hasVideo} once decided
    this.pending = [];
    this.pendingBytes = 0;
    this.seenAudio = false;
    this.seenVideo = false;
    this.firstTs = null;
    this.onDecide = null; // (flags) => void
  }
  /** metadata(obj) records onMetaData; returns the bytes to emit. */
  metadata(md) {
    const tag = flvTag(18, 0, amf.encode0("onMetaData", md && typeof md === "object" ? md : {}));
    if (this.flags) return [tag];
    const hasVideo = md && md.videocodecid !== undefined;
    const hasAudio = md && md.audiocodecid !== undefined;
    this.pending.unshift(tag);
    this.pendingBytes += tag.length;
    if (hasVideo || hasAudio) return this.decide(!!hasAudio, !!hasVideo);
    if (this.pendingBytes > this.maxPending) return this.decide(this.seenAudio, this.seenVideo || !this.seenAudio);
    return [];
  }
  /** media(type, timestamp, payload): bytes to emit now (maybe none). */
  media(type, timestamp, payload) {
    if (payload.length === 0) return [];
    const tag = flvTag(type, timestamp, payload);
    if (this.flags) return [tag];
    if (type === 8) this.seenAudio = true; else this.seenVideo = true;
    if (this.firstTs === null) this.firstTs = timestamp;
    this.pending.push(tag);
    this.pendingBytes += tag.length;
    if ((this.seenAudio && this.seenVideo) || timestamp - this.firstTs >= this.decideAfterMs || this.pendingBytes > this.maxPending) {
      return this.decide(this.seenAudio, this.seenVideo);
    }
    return [];
  }
  decide(hasAudio, hasVideo) {
    this.flags = { hasAudio, hasVideo };
    const out = [flvHeader(hasAudio, hasVideo), ...this.pending];
    this.pending = [];
    this.pendingBytes = 0;
    if (this.onDecide) this.onDecide(this.flags);
    return out;
  }
}

// ---------------------------------------------------------------------------
// NetStream (playback)

let mpegtsPromise = null;
/** loadMpegts(): window.mpegts, loading the hub's copy on first use. */
export function loadMpegts(url = NetStream.mpegtsURL) {
  if (globalThis.mpegts) return Promise.resolve(globalThis.mpegts);
  if (mpegtsPromise) return mpegtsPromise;
  mpegtsPromise = new Promise((resolve, reject) => {
    if (typeof document === "undefined") { reject(new Error("mpegts.js needs a page (document)")); return; }
    const s = document.createElement("script");
    s.src = url;
    s.async = true;
    const timer = setTimeout(() => { reject(new Error(`loading ${url} timed out`)); }, 30000);
    s.onload = () => { clearTimeout(timer); globalThis.mpegts ? resolve(globalThis.mpegts) : reject(new Error(`${url} did not define mpegts`)); };
    s.onerror = () => { clearTimeout(timer); reject(new Error(`loading ${url} failed`)); };
    document.head.appendChild(s);
  });
  mpegtsPromise.catch(() => { mpegtsPromise = null; });
  return mpegtsPromise;
}

/**
 * NetStream: flash.net.NetStream, playing only. The stream is created on the
 * NetConnection at once (createStream); play() waits for it.
 */
export class NetStream extends EventTarget {
  constructor(nc) {
    super();
    if (!nc || !nc.connected) throw new Error("NetStream: the NetConnection is not connected");
    this.nc = nc;
    /** Handlers of data messages (onMetaData, onCuePoint, send() handlers...). Default: this. */
    this.client = this;
    this.onStatus = null;
    /** Seconds the server is asked to buffer (SetBufferLength). */
    this.bufferTime = 0.1;
    this.streamId = 0;
    this.video = null;
    this._closed = false;
    this._queued = [];
    this._player = null;
    this._loader = null;
    this._flv = null;
    this._flvQueue = [];
    this._flvQueued = 0;
    this._seq = {}; // the last audio (8) and video (9) sequence headers
    this._md = null;
    this._waitKey = false;
    nc.call("createStream", new Responder((id) => {
      if (this._closed || typeof id !== "number") return;
      this.streamId = id;
      nc._streams.set(id, this);
      const q = this._queued;
      this._queued = [];
      for (const f of q) f();
    }, (i) => dispatchStatus(this, Object.assign(info("error", "NetStream.Failed", "createStream failed."), { details: i }))));
  }

  /** attach(videoElement): where play() shows the stream (through mpegts.js). */
  attach(video) {
    const late = !this.video && !this._flv && (this._md || this._seq[8] || this._seq[9]);
    this.video = video;
    if (late) {
      // Attached while playing: start from what a decoder needs first
      // (metadata, sequence headers), then the next keyframe.
      this._waitKey = !!this._seq[9];
      if (this._md) this._emit(this._remuxer().metadata(this._md));
      for (const t of [9, 8]) if (this._seq[t]) this._emit(this._remuxer().media(t, this._seq[t].timestamp, this._seq[t].payload));
    }
    if (this._flv && this._flv.flags && !this._player) this._startPlayer();
  }

  /** play(name, start = -2, len = -1, reset = true): start -2 live or recorded, -1 live only, ≥0 seconds into a recording. */
  play(name, start = -2, len = -1, reset = true) {
    if (this._closed) return;
    const run = () => {
      this._resetMedia();
      const s = typeof start === "number" ? start : -2;
      const args = ["play", 0, null, String(name), s < 0 ? (s <= -2 ? -2000 : -1000) : s * 1000];
      if (typeof len === "number" && len >= 0) args.push(len * 1000);
      else if (reset !== true) args.push(-1000);
      if (reset !== true) args.push(!!reset);
      this.nc._sendCommand(this.streamId, args);
      const w = new Writer(10);
      w.u16(3); w.u32(this.streamId); w.u32(Math.round(this.bufferTime * 1000));
      this.nc._sendControl(MessageType.USER_CONTROL, w.result());
    };
    if (this.streamId) run(); else this._queued.push(run);
  }
  pause() { this._streamCall(["pause", 0, null, true, 0]); }
  resume() { this._streamCall(["pause", 0, null, false, 0]); }
  seek(seconds) { this._streamCall(["seek", 0, null, Math.max(0, seconds) * 1000]); }
  receiveAudio(flag) { this._streamCall(["receiveAudio", 0, null, !!flag]); }
  receiveVideo(flag) { this._streamCall(["receiveVideo", 0, null, !!flag]); }

  /** close(): stops playing and deletes the stream on the server. */
  close() {
    if (this._closed) return;
    this._closed = true;
    const nc = this.nc;
    if (this.streamId && nc.connected) {
      nc._sendCommand(this.streamId, ["closeStream", 0, null]);
      nc._sendCommand(0, ["deleteStream", 0, null, this.streamId]);
    }
    if (nc._streams.get(this.streamId) === this) nc._streams.delete(this.streamId);
    this._queued = [];
    this._destroyPlayer();
  }

  _streamCall(vals) {
    if (this._closed) return;
    const run = () => this.nc._sendCommand(this.streamId, vals);
    if (this.streamId) run(); else this._queued.push(run);
  }
  _onConnectionClosed() { this._closed = true; this._destroyPlayer(); }
  _onUserControl() { /* StreamBegin / StreamEOF: the status commands say more */ }

  _onCommand(name, args) {
    if (name === "onStatus") {
      const i = args[0] !== null && typeof args[0] === "object" ? args[0] : args[1];
      if (i && typeof i === "object") dispatchStatus(this, i);
      return;
    }
    const c = this.client || this;
    const fn = handlerOf(c, this, name);
    if (fn) callSafe(this, fn, c, args);
  }
  _onData(vals) {
    let [name, ...args] = vals;
    if (name === "@setDataFrame" && typeof args[0] === "string") [name, ...args] = args;
    if (typeof name !== "string") return;
    if (name === "onMetaData") {
      this._md = args[0];
      if (this.video) this._emit(this._remuxer().metadata(args[0]));
    }
    if (name === "onStatus" && args[0] && typeof args[0] === "object") { dispatchStatus(this, args[0]); return; }
    const c = this.client || this;
    const fn = handlerOf(c, this, name);
    if (fn) callSafe(this, fn, c, args);
    else if (name !== "|RtmpSampleAccess" && name !== "onMetaData" && name !== "onPlayStatus") {
      reportAsync(this, new Error(`NetStream: no handler ${name} on the client object`));
    }
  }
  _onMedia(m) {
    if (m.type === MessageType.AGGREGATE) { for (const x of splitAggregate(m)) this._onMedia(x); return; }
    const p = m.payload;
    if (p.length < 2) return;
    if (isSequenceHeader(m.type, p)) this._seq[m.type] = m;
    // Without a video element nothing is remuxed (attach() starts from the
    // sequence headers kept above).
    if (!this.video) return;
    if (this._waitKey) {
      if (m.type !== MessageType.VIDEO || ((p[0] >> 4) & 7) !== 1) return;
      this._waitKey = false;
    }
    this._emit(this._remuxer().media(m.type, m.timestamp, p));
  }
  _remuxer() {
    if (!this._flv) {
      this._flv = new FLVRemuxer();
      this._flv.onDecide = () => { if (this.video && !this._player) this._startPlayer(); };
    }
    return this._flv;
  }
  // _emit hands FLV bytes to the player's loader, or keeps them (bounded)
  // until it opens.
  _emit(chunks) {
    for (const c of chunks) {
      if (this._loader && this._loader._open) { this._loader._push(c); continue; }
      if (this._flvQueued + c.length > 16 << 20) {
        // The page never attached a video, or mpegts.js could not load:
        // start over at the next header rather than grow without bound.
        this._flvQueue = [];
        this._flvQueued = 0;
        this._flv = null;
        return;
      }
      this._flvQueue.push(c);
      this._flvQueued += c.length;
    }
  }
  _resetMedia() {
    this._destroyPlayer();
    this._seq = {};
    this._md = null;
    this._waitKey = false;
    this._flv = null;
    this._flvQueue = [];
    this._flvQueued = 0;
  }
  _startPlayer() {
    const flags = this._flv.flags;
    const ns = this;
    this._player = "loading";
    loadMpegts().then((mpegts) => {
      if (this._closed || this._player !== "loading" || !this.video) return;
      class Loader {
        constructor() {
          this._status = 0; this._needStash = true; this._open = false; this._received = 0;
          this.onContentLengthKnown = null; this.onURLRedirect = null; this.onDataArrival = null; this.onError = null; this.onComplete = null;
        }
        get type() { return "rtmphub-netstream"; }
        get status() { return this._status; }
        get needStashBuffer() { return this._needStash; }
        isWorking() { return this._status === 1 || this._status === 2; }
        open() {
          this._status = 2; // buffering
          this._open = true;
          ns._loader = this;
          const q = ns._flvQueue;
          ns._flvQueue = [];
          ns._flvQueued = 0;
          for (const c of q) this._push(c);
        }
        _push(c) {
          if (!this.onDataArrival) return;
          const start = this._received;
          this._received += c.length;
          this.onDataArrival(c.buffer.byteLength === c.length ? c.buffer : c.slice().buffer, start, this._received);
        }
        abort() { this._open = false; this._status = 4; if (ns._loader === this) ns._loader = null; }
        destroy() { this.abort(); this._status = 0; this.onDataArrival = null; }
      }
      const player = mpegts.createPlayer(
        { type: "flv", isLive: true, hasAudio: flags.hasAudio, hasVideo: flags.hasVideo, url: "rtmphub://netstream" },
        { customLoader: Loader, enableStashBuffer: false, liveBufferLatencyChasing: true, autoCleanupSourceBuffer: true },
      );
      this._player = player;
      player.attachMediaElement(this.video);
      player.load();
      const p = player.play();
      if (p && typeof p.catch === "function") p.catch(() => { /* autoplay refused: the page can call video.play() */ });
    }, (err) => {
      this._player = null;
      dispatchStatus(this, Object.assign(info("error", "NetStream.Play.Failed", `Cannot load the player: ${err.message}`)));
    });
  }
  _destroyPlayer() {
    const p = this._player;
    this._player = null;
    this._loader = null;
    if (p && typeof p === "object") {
      try { p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); } catch { /* already torn down */ }
    }
  }
}

// isSequenceHeader: an AVC/HEVC decoder configuration record (legacy or
// enhanced RTMP header) or an AAC AudioSpecificConfig.
function isSequenceHeader(type, p) {
  if (type === MessageType.VIDEO) {
    if (p[0] & 0x80) return (p[0] & 0x0f) === 0; // ExHeader, PacketTypeSequenceStart
    return ((p[0] & 0x0f) === 7 || (p[0] & 0x0f) === 12) && p[1] === 0;
  }
  if (type === MessageType.AUDIO) {
    if ((p[0] >> 4) === 9) return (p[0] & 0x0f) === 0;
    return (p[0] >> 4) === 10 && p[1] === 0;
  }
  return false;
}

/** Where NetStream loads mpegts.js from: the hub that served this module. */
NetStream.mpegtsURL = new URL("../.rtmphub/vendor/mpegts.js", import.meta.url).href;
