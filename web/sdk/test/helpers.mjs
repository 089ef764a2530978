// Shared helpers of the node tests.
import assert from "node:assert/strict";
import { amf, AMF_META, AMFXML, AMFXMLDocument } from "../rtmphub.js";

export function hex(b) { return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex"); }
export function unhex(s) { return new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex")); }

// fromFixture builds the JavaScript value the library uses for a typed
// fixture value of rtmp/amf/testdata/cases.json (see README "AMF values").
export function fromFixture(v) {
  const props = (ps, obj) => { for (const [k, x] of ps) Object.defineProperty(obj, k, { value: fromFixture(x), enumerable: true, configurable: true, writable: true }); return obj; };
  switch (v.t) {
    case "number": return typeof v.v === "string" ? Number(v.v === "-0" ? "-0" : v.v) : v.v;
    case "int": return v.v;
    case "string": case "bool": return v.v;
    case "null": return null;
    case "undefined": case "unsupported": return undefined;
    case "date": return new Date(v.ms);
    case "xmldoc": return new AMFXMLDocument(v.v);
    case "xml": return new AMFXML(v.v);
    case "bytes": return unhex(v.hex);
    case "array": return v.items.map(fromFixture);
    case "object": return props(v.props, {});
    case "ecma": return props(v.props, amf.ecmaArray({}));
    case "typed": return props(v.props, v.class === "" ? {} : amf.typedObject(v.class, {}));
    case "mixed":
      if (v.dense.length === 0 && v.props.length > 0) return props(v.props, amf.ecmaArray({}));
      return props(v.props, v.dense.map(fromFixture));
    case "vint": { const a = Int32Array.from(v.items); return v.fixed ? amf.fixed(a) : a; }
    case "vuint": { const a = Uint32Array.from(v.items); return v.fixed ? amf.fixed(a) : a; }
    case "vdouble": { const a = Float64Array.from(v.items.map((x) => (typeof x === "string" ? Number(x) : x))); return v.fixed ? amf.fixed(a) : a; }
    case "vobject": return amf.vector(v.class, v.items.map(fromFixture), v.fixed);
    case "dict": { const m = new Map(v.entries.map(([k, x]) => [fromFixture(k), fromFixture(x)])); return v.weak ? amf.weakKeys(m) : m; }
    default: throw new Error(`unknown fixture type ${v.t}`);
  }
}

function metaKey(v) {
  const m = v !== null && typeof v === "object" ? v[AMF_META] : undefined;
  return m ? JSON.stringify(m) : "";
}

// sameValue compares decoded values strictly: types, AMF type marks,
// property order, NaN equal to NaN, -0 unequal to 0.
export function sameValue(a, b, path = "$") {
  const fail = (why) => assert.fail(`${path}: ${why}\n got: ${show(a)}\nwant: ${show(b)}`);
  if (typeof a !== typeof b) fail(`type ${typeof a} != ${typeof b}`);
  if (typeof a === "number") { if (!Object.is(a, b)) fail("numbers differ"); return; }
  if (a === null || b === null || typeof a !== "object") { if (a !== b) fail("values differ"); return; }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) fail(`class ${a.constructor && a.constructor.name} != ${b.constructor && b.constructor.name}`);
  if (metaKey(a) !== metaKey(b)) fail(`AMF mark ${metaKey(a)} != ${metaKey(b)}`);
  if (a instanceof Date) { if (a.getTime() !== b.getTime()) fail("dates differ"); return; }
  if (a instanceof AMFXML || a instanceof AMFXMLDocument) { if (a.text !== b.text) fail("XML differs"); return; }
  if (ArrayBuffer.isView(a)) {
    if (a.length !== b.length) fail("lengths differ");
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) fail(`element ${i} differs`);
    return;
  }
  if (a instanceof Map) {
    const ea = [...a], eb = [...b];
    if (ea.length !== eb.length) fail("sizes differ");
    ea.forEach(([k, v], i) => { sameValue(k, eb[i][0], `${path}.key${i}`); sameValue(v, eb[i][1], `${path}.val${i}`); });
    return;
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (JSON.stringify(ka) !== JSON.stringify(kb)) fail(`keys ${JSON.stringify(ka)} != ${JSON.stringify(kb)}`);
  if (Array.isArray(a) && a.length !== b.length) fail("lengths differ");
  for (const k of ka) sameValue(a[k], b[k], `${path}.${k}`);
}

function show(v) {
  try {
    return JSON.stringify(v, (k, x) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x instanceof Map ? [...x] : x)).slice(0, 300);
  } catch { return String(v); }
}
