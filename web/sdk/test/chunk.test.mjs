// Handshake, chunk stream reader and writer, FLV remuxing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChunkReader, ChunkWriter, Handshake, handshakeC0C1, RTMPError, MessageType, flvHeader, flvTag, FLVRemuxer, splitAggregate, amf } from "../rtmphub.js";
import { hex, unhex } from "./helpers.mjs";

function bytes(n, seed = 1) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff; return b; }
function setChunkSize(n) { return { csid: 2, type: MessageType.SET_CHUNK_SIZE, streamId: 0, timestamp: 0, payload: Uint8Array.of(n >>> 24, n >>> 16, n >>> 8, n) }; }
function strip(m) { return { type: m.type, streamId: m.streamId, timestamp: m.timestamp, payload: hex(m.payload) }; }

test("handshake: C0C1, C2 echoes S1, rest after S2", () => {
  const c = handshakeC0C1(1234);
  assert.equal(c.length, 1537);
  assert.equal(c[0], 3);
  assert.equal(hex(c.subarray(1, 9)), "000004d200000000"); // time, then zero: simple handshake
  const s1 = bytes(1536, 7), s2 = bytes(1536, 9);
  const all = new Uint8Array([3, ...s1, ...s2, 0xaa, 0xbb]);
  const hs = new Handshake();
  let c2 = null, rest = null;
  for (let i = 0; i < all.length; i += 100) {
    const r = hs.push(all.subarray(i, Math.min(all.length, i + 100)));
    if (r.c2) { assert.equal(c2, null, "C2 once"); c2 = r.c2; }
    if (r.done) { rest = r.rest; assert.ok(i + 100 >= all.length); }
  }
  assert.equal(hex(c2), hex(s1));
  assert.equal(hex(rest), "aabb");
  assert.throws(() => new Handshake().push(Uint8Array.of(6, 0)), /version 6/);
});

test("chunks: writer and reader round trip over chunk sizes, message sizes, byte-at-a-time", () => {
  for (const size of [1, 128, 4096, 65536]) {
    const w = new ChunkWriter();
    const r = new ChunkReader();
    const msgs = [];
    let out = [];
    if (size !== 128) {
      out.push(w.write(setChunkSize(size)));
      w.chunkSize = size;
      msgs.push(setChunkSize(size));
    }
    let ts = 0;
    for (const [i, n] of [0, 1, 127, 128, 129, 300, 70000, 5].entries()) {
      ts += i * 33;
      const m = { csid: 3 + (i % 3), type: i % 2 ? 9 : 8, streamId: i % 3 === 0 ? 0 : 1, timestamp: ts, payload: bytes(n, i) };
      msgs.push(m);
      out.push(w.write(m));
    }
    const wire = new Uint8Array(out.reduce((a, b) => a + b.length, 0));
    let o = 0;
    for (const b of out) { wire.set(b, o); o += b.length; }
    // Whole, then one byte at a time: the same messages.
    assert.deepEqual(r.push(wire).map(strip), msgs.map(strip), `chunk size ${size}`);
    if (size <= 128) {
      const r2 = new ChunkReader();
      const got = [];
      for (let i = 0; i < wire.length; i++) got.push(...r2.push(wire.subarray(i, i + 1)));
      assert.deepEqual(got.map(strip), msgs.map(strip), `chunk size ${size}, byte at a time`);
    }
  }
});

test("chunks: the writer uses all four header formats, and the reader follows them", () => {
  const w = new ChunkWriter();
  const r = new ChunkReader();
  const seq = [
    [1000, 10, 0], // first on the chunk stream: format 0
    [1020, 12, 1], // new length: format 1 (delta 20)
    [1040, 12, 3], // same length, same delta as the format 1 set: format 3
    [1060, 12, 3], // same delta as the format 2 set: format 3
    [1100, 12, 2], // another delta: format 2
    [900, 12, 0], // back in time: format 0
  ];
  const fmts = [];
  for (const [ts, n] of seq) {
    const b = w.write({ csid: 4, type: 9, streamId: 1, timestamp: ts, payload: bytes(n) });
    fmts.push(b[0] >> 6);
    const got = r.push(b);
    assert.equal(got.length, 1);
    assert.equal(got[0].timestamp, ts);
    assert.equal(got[0].payload.length, n);
  }
  // The third message: a format-1 header's delta counts for a following format 3 in the server's writer too.
  assert.deepEqual(fmts, [0, 1, 3, 3, 2, 0]);
});

test("chunks: extended timestamps, repeated in format-3 chunks or not", () => {
  const w = new ChunkWriter();
  const ts = 0x01234567;
  const b = w.write({ csid: 5, type: 8, streamId: 1, timestamp: ts, payload: bytes(300) });
  // Header: fmt 0 csid 5, 0xFFFFFF, length, type, stream id, extended ts.
  assert.equal(hex(b.subarray(0, 16)), "05ffffff00012c0801000000" + "01234567");
  // Continuation chunks repeat the extended field.
  assert.equal(hex(b.subarray(16 + 128, 16 + 128 + 5)), "c501234567");
  const got = new ChunkReader().push(b);
  assert.equal(got[0].timestamp, ts);
  assert.equal(hex(got[0].payload), hex(bytes(300)));
  // A peer that leaves the field out of format-3 chunks reads as well.
  const p = bytes(200, 3);
  const omitted = new Uint8Array([0x05, 0xff, 0xff, 0xff, 0, 0, 200, 8, 1, 0, 0, 0, 0x01, 0x23, 0x45, 0x67, ...p.subarray(0, 128), 0xc5, ...p.subarray(128)]);
  const got2 = new ChunkReader().push(omitted);
  assert.equal(got2[0].timestamp, ts);
  assert.equal(hex(got2[0].payload), hex(p));
});

test("chunks: interleaved streams, two-byte and three-byte chunk stream ids", () => {
  // Messages on chunk streams 3, 70 and 400 cut into 128-byte chunks and
  // interleaved chunk by chunk.
  const w = { 3: new ChunkWriter(), 70: new ChunkWriter(), 400: new ChunkWriter() };
  const cut = (csid, m) => {
    const b = w[csid].write(m);
    const hdr = b.length - m.payload.length - Math.max(0, Math.ceil(m.payload.length / 128) - 1) * (csid < 64 ? 1 : csid < 320 ? 2 : 3);
    const parts = [b.subarray(0, hdr + Math.min(128, m.payload.length))];
    let o = parts[0].length;
    while (o < b.length) { const step = (csid < 64 ? 1 : csid < 320 ? 2 : 3) + 128; parts.push(b.subarray(o, Math.min(b.length, o + step))); o += step; }
    return parts;
  };
  const ms = { 3: { csid: 3, type: 20, streamId: 0, timestamp: 1, payload: bytes(500, 1) }, 70: { csid: 70, type: 9, streamId: 1, timestamp: 2, payload: bytes(300, 2) }, 400: { csid: 400, type: 8, streamId: 1, timestamp: 3, payload: bytes(260, 3) } };
  const parts = { 3: cut(3, ms[3]), 70: cut(70, ms[70]), 400: cut(400, ms[400]) };
  const wire = [];
  for (let i = 0; i < 4; i++) for (const k of [3, 70, 400]) if (parts[k][i]) wire.push(parts[k][i]);
  const r = new ChunkReader();
  const got = wire.flatMap((b) => r.push(b));
  assert.deepEqual(got.map(strip).sort((a, b) => a.timestamp - b.timestamp), [ms[3], ms[70], ms[400]].map(strip));
  assert.equal(got[0].csid, 70, "the message with the shortest last chunk completes first");
});

test("chunks: Set Chunk Size and Abort from the peer apply to what follows", () => {
  const w = new ChunkWriter();
  const r = new ChunkReader();
  const big = { csid: 6, type: 9, streamId: 1, timestamp: 0, payload: bytes(1000) };
  const a = w.write(setChunkSize(4096));
  w.chunkSize = 4096;
  const b = w.write(big);
  assert.equal(b.length, 12 + 1000, "one chunk at 4096");
  const got = r.push(new Uint8Array([...a, ...b]));
  assert.equal(got.length, 2);
  assert.equal(r.chunkSize, 4096);
  // Abort: the partial message on chunk stream 7 is dropped.
  const part = new Uint8Array([0x07, 0, 0, 0, 0x00, 0x20, 0x00, 9, 1, 0, 0, 0, ...bytes(4096)]); // 8192-byte message, first half
  assert.equal(r.push(part).length, 0);
  assert.equal(r.partial, 4096);
  const abort = w.write({ csid: 2, type: MessageType.ABORT, streamId: 0, timestamp: 0, payload: Uint8Array.of(0, 0, 0, 7) });
  assert.equal(r.push(abort).length, 1);
  assert.equal(r.partial, 0);
  // The next format-0 message on chunk stream 7 reads whole.
  const next = r.push(new Uint8Array([0x07, 0, 0, 0, 0, 0, 2, 8, 1, 0, 0, 0, 0xaf, 0x01]));
  assert.equal(hex(next[0].payload), "af01");
});

test("chunks: limits and protocol errors", () => {
  const r = new ChunkReader({ maxMessageSize: 1000 });
  assert.throws(() => r.push(new Uint8Array([0x03, 0, 0, 0, 0, 0x10, 0, 20, 0, 0, 0, 0])), (e) => e instanceof RTMPError && e.kind === "limit");
  assert.throws(() => new ChunkReader().push(Uint8Array.of(0xc3, 1, 2)), (e) => e instanceof RTMPError && /format-3/.test(e.message));
  assert.throws(() => new ChunkReader().push(Uint8Array.of(0x83, 0, 0, 0)), /format-2/);
  // Partial messages over all chunk streams are bounded too.
  const r2 = new ChunkReader({ maxMessageSize: 1000, maxPartial: 1100 });
  r2.push(new Uint8Array([0x03, 0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0, ...bytes(128)]));
  assert.throws(() => r2.push(new Uint8Array([0x04, 0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0, ...bytes(128)])), (e) => e.kind === "limit");
  // Chunk streams: at most 256.
  const r3 = new ChunkReader();
  assert.throws(() => { for (let i = 0; i < 300; i++) r3.push(new Uint8Array([0x00, i & 0xff, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0])); if (true) { for (let i = 0; i < 300; i++) r3.push(new Uint8Array([0x01, i & 0xff, 1, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0])); } }, (e) => e.kind === "limit");
  // Set Chunk Size 0 is an error.
  assert.throws(() => new ChunkReader().push(new Uint8Array([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0])), /SetChunkSize/);
});

test("FLV: header, tags, aggregate messages", () => {
  assert.equal(hex(flvHeader(true, true)), "464c560105000000090" + "0000000");
  assert.equal(hex(flvHeader(false, true)), "464c5601010000000900000000");
  // Timestamp 0x12345678: low 24 bits, then the high byte.
  assert.equal(hex(flvTag(9, 0x12345678, Uint8Array.of(0x17, 0x01))), "09000002345678120000001701" + "0000000d");
  const agg = new Uint8Array([...flvTag(9, 100, Uint8Array.of(1, 2)), ...flvTag(8, 120, Uint8Array.of(3))]);
  const msgs = splitAggregate({ type: 22, streamId: 1, timestamp: 5000, payload: agg });
  assert.deepEqual(msgs.map((m) => [m.type, m.timestamp, hex(m.payload)]), [[9, 5000, "0102"], [8, 5020, "03"]]);
});

test("FLV remuxer: header flags from onMetaData or from the media seen", () => {
  const concat = (cs) => hex(new Uint8Array(cs.flatMap((c) => [...c])));
  // Metadata naming both codecs: header with audio and video at once, metadata first.
  let x = new FLVRemuxer();
  let out = x.metadata(amf.ecmaArray({ videocodecid: 7, audiocodecid: 10 }));
  assert.equal(hex(out[0]), hex(flvHeader(true, true)));
  assert.equal(out[1][0], 18);
  assert.equal(hex(out[1].subarray(11, 11 + 13)), "02000a6f6e4d65746144617461"); // "onMetaData"
  assert.equal(concat(x.media(9, 0, Uint8Array.of(0x17))), hex(flvTag(9, 0, Uint8Array.of(0x17))));
  // Video only, no metadata: held until a second of media shows no audio.
  x = new FLVRemuxer();
  assert.equal(x.media(9, 1000, Uint8Array.of(0x17, 0)).length, 0);
  assert.equal(x.media(9, 1500, Uint8Array.of(0x27, 1)).length, 0);
  out = x.media(9, 2000, Uint8Array.of(0x27, 1));
  assert.equal(hex(out[0]), hex(flvHeader(false, true)));
  assert.equal(out.length, 4);
  // Audio and video: decided at the second kind.
  x = new FLVRemuxer();
  assert.equal(x.media(8, 0, Uint8Array.of(0xaf, 0)).length, 0);
  out = x.media(9, 0, Uint8Array.of(0x17, 0));
  assert.equal(hex(out[0]), hex(flvHeader(true, true)));
  assert.equal(out.length, 3);
});
