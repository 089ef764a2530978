// The AMF codecs against the server codec's case tables
// (rtmp/amf/testdata/cases.json, generated from rtmp/amf/*_test.go).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { amf, AMFError } from "../rtmphub.js";
import { fromFixture, sameValue, hex, unhex } from "./helpers.mjs";

const cases = JSON.parse(readFileSync(new URL("../../../rtmp/amf/testdata/cases.json", import.meta.url), "utf8"));

// Rows whose values JavaScript cannot write back as the same bytes, and why.
// The test checks that each of them still differs: a row that starts to
// match must leave this list.
const notEncodable = {
  amf0: {
    // The table's NaN has payload bit 1 (7FF8...01); a JavaScript NaN from
    // the fixture is the canonical one (7FF8...00).
    "number NaN": "NaN payload",
    // JavaScript has no "unsupported" value: 0x0D decodes as undefined,
    // which is written as 0x06.
    "unsupported": "no unsupported value in JavaScript",
    // An AMF3 array with named members only decodes as an object marked as
    // an ECMA array (it reads better); AMF0 writes such an object as 0x08
    // rather than behind an AVM+ switch.
    "AVM+ mixed array": "assoc-only AMF3 array is an ECMA-array object",
    "AVM+ string tables shared across switches": "assoc-only AMF3 array is an ECMA-array object",
  },
  amf3: {
    "double NaN": "NaN payload",
  },
};

for (const enc of ["amf0", "amf3"]) {
  const decode = enc === "amf0" ? amf.decode0 : amf.decode3;
  const encode = enc === "amf0" ? amf.encode0 : amf.encode3;
  for (const row of cases[enc]) {
    if (!row.encodeOnly) {
      test(`${enc} decode: ${row.name}`, () => {
        const got = decode(unhex(row.wire));
        const want = row.vals.map(fromFixture);
        assert.equal(got.length, want.length, "number of values");
        got.forEach((v, i) => sameValue(v, want[i], `value ${i}`));
      });
    }
    if (!row.decodeOnly) {
      test(`${enc} encode: ${row.name}`, () => {
        const got = hex(encode(...row.vals.map(fromFixture)));
        if (notEncodable[enc][row.name]) {
          assert.notEqual(got, row.wire, `listed as not encodable (${notEncodable[enc][row.name]}) but now matches`);
          return;
        }
        assert.equal(got, row.wire);
      });
    }
    test(`${enc} round trip: ${row.name}`, () => {
      const want = row.vals.map(fromFixture);
      const got = decode(encode(...want));
      got.forEach((v, i) => sameValue(v, want[i], `value ${i}`));
    });
  }
  for (const row of cases[enc + "Errors"]) {
    test(`${enc} decode error: ${row.name}`, () => {
      const wire = unhex(row.wire);
      assert.throws(() => {
        const vals = decode(wire);
        // An empty input is no values; asked for one, it is truncated.
        if (wire.length === 0 && vals.length === 0) throw new AMFError("truncated", "empty input");
      }, (err) => {
        assert.ok(err instanceof AMFError, `not an AMFError: ${err}`);
        if (row.want) assert.equal(err.kind, row.want);
        return true;
      });
    });
  }
}

test("reference expansion is bounded", () => {
  // An AMF3 array of 2^20 references to one 100-byte string: a few MB of
  // input, 100 MB once expanded (the server's rows, too large to commit).
  const n = 1 << 20;
  const parts = [0x09];
  const u29 = (v) => (v < 0x80 ? [v] : v < 0x4000 ? [(v >> 7) | 0x80, v & 0x7f] : v < 0x200000 ? [(v >> 14) | 0x80, ((v >> 7) & 0x7f) | 0x80, v & 0x7f] : [(v >> 22) | 0x80, ((v >> 15) & 0x7f) | 0x80, ((v >> 8) & 0x7f) | 0x80, v & 0xff]);
  parts.push(...u29(((n + 1) << 1) | 1), 0x01, 0x06, ...u29((100 << 1) | 1));
  const head = Uint8Array.from(parts);
  const b = new Uint8Array(head.length + 100 + 2 * n);
  b.set(head); b.fill(0x78, head.length, head.length + 100);
  for (let i = head.length + 100; i < b.length; i += 2) { b[i] = 0x06; b[i + 1] = 0x00; }
  assert.throws(() => amf.decode3(b), (e) => e.kind === "toolarge");
  // Doubling object references: 40 levels, 2^40 values.
  const d = [0x09, ...u29((41 << 1) | 1), 0x01, 0x09, 0x03, 0x01, 0x06, 0x09, 0x7a, 0x7a, 0x7a, 0x7a];
  for (let i = 1; i <= 40; i++) d.push(0x09, 0x05, 0x01, 0x09, ...u29(i << 1), 0x09, ...u29(i << 1));
  assert.throws(() => amf.decode3(Uint8Array.from(d)), (e) => e.kind === "toolarge");
});

test("JavaScript values encode as Flash Player writes them", () => {
  // Integral numbers in the 29-bit range are AMF3 integers, others doubles.
  assert.equal(hex(amf.encode3(5, -1, 1.5, 2 ** 28, -0)), "0405" + "04ffffffff" + "053ff8000000000000" + "0541b0000000000000" + "058000000000000000");
  // An object seen twice is a reference; a cycle in AMF0 hits the depth limit.
  const o = { a: 1 };
  assert.equal(hex(amf.encode3([o, o])), "0905010a0b0103610401010a02");
  const cyc = {}; cyc.self = cyc;
  assert.throws(() => amf.encode0(cyc), (e) => e.kind === "depth");
  // Typed objects and ECMA arrays.
  assert.equal(hex(amf.encode0(amf.typedObject("C", { x: 1 }))), "10" + "0001" + "43" + "0001" + "78" + "00" + "3ff0000000000000" + "000009");
  assert.equal(hex(amf.encode0(amf.ecmaArray({ k: "v" }))), "0800000001" + "00016b" + "02000176" + "000009");
  // An ArrayBuffer/Uint8Array is a ByteArray, behind an AVM+ switch in AMF0.
  assert.equal(hex(amf.encode0(new Uint8Array([1, 2]))), "110c050102");
  // __proto__ is an ordinary key when decoding, never a prototype change.
  const p = amf.decode0(unhex("03 0009 5f5f70726f746f5f5f 02 0001 78 000009"))[0];
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(p, "__proto__").value, "x");
});
