// NetConnection, SharedObject and NetStream at the message level, against
// an in-memory server (fakeserver.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { NetConnection, SharedObject, NetStream, Responder, CallError, parseURL, amf, SOEvent } from "../rtmphub.js";
import { FakeServer, waitStatus } from "./fakeserver.mjs";

const u32 = (n) => Uint8Array.of(n >>> 24, n >>> 16, n >>> 8, n);

async function connected(enc, ...args) {
  const srv = new FakeServer();
  const nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  nc.objectEncoding = enc;
  nc.connect("rtmpws://example.com:8080/chat/room1", ...args);
  const c = await srv.command("connect");
  srv.sendMessage({ csid: 2, type: 5, streamId: 0, timestamp: 0, payload: u32(2500000) });
  srv.sendMessage({ csid: 2, type: 6, streamId: 0, timestamp: 0, payload: Uint8Array.of(0, 0x26, 0x25, 0xa0, 2) });
  srv.setChunkSize(4096);
  const ok = waitStatus(nc, "NetConnection.Connect.Success");
  srv.sendCommand(["_result", 1, { fmsVer: "FMS/3,5,7,7009", capabilities: 31 }, { level: "status", code: "NetConnection.Connect.Success", description: "Connection succeeded.", objectEncoding: enc }]);
  await ok;
  return { srv, nc, connect: c };
}

test("parseURL", () => {
  assert.deepEqual(parseURL("rtmpws://h:8080/chat/room1"), { wsURL: "ws://h:8080/rtmp", app: "chat/room1", tcUrl: "rtmpws://h:8080/chat/room1" });
  assert.deepEqual(parseURL("rtmpwss://h/chat"), { wsURL: "wss://h/rtmp", app: "chat", tcUrl: "rtmpwss://h/chat" });
  assert.deepEqual(parseURL("rtmp://h/live?x=1"), { wsURL: "ws://h:1935/rtmp", app: "live?x=1", tcUrl: "rtmp://h:1935/live?x=1" });
  assert.deepEqual(parseURL("/chat/room1", { protocol: "https:", host: "example.org" }), { wsURL: "wss://example.org/rtmp", app: "chat/room1", tcUrl: "rtmpwss://example.org/chat/room1" });
  assert.equal(parseURL("/a", { protocol: "http:", host: "[::1]:81" }).wsURL, "ws://[::1]:81/rtmp");
  assert.throws(() => parseURL("ftp://h/x"), /unsupported scheme/);
  assert.throws(() => parseURL("not a url"), /bad URL/);
});

for (const enc of [0, 3]) {
  test(`connect (objectEncoding ${enc}): handshake, connect object and arguments, control replies`, async () => {
    const { srv, nc, connect } = await connected(enc, "nick", 5, { role: "guest" });
    assert.equal(srv.url, "ws://example.com:8080/rtmp");
    assert.deepEqual(srv.protocols, ["rtmp"]);
    assert.equal(srv.c1.subarray(4, 8).join(), "0,0,0,0", "simple handshake");
    assert.equal(Buffer.from(srv.c2).toString("hex"), Buffer.from(Uint8Array.from({ length: 1536 }, (_, i) => (i + 1) & 0xff)).toString("hex"), "C2 echoes S1");
    assert.equal(connect.type, 20, "connect is always AMF0");
    const [name, tx, obj, ...args] = connect.vals;
    assert.equal(name, "connect");
    assert.equal(tx, 1);
    assert.equal(obj.app, "chat/room1");
    assert.equal(obj.tcUrl, "rtmpws://example.com:8080/chat/room1");
    assert.equal(obj.objectEncoding, enc);
    assert.equal(obj.fpad, false);
    assert.match(obj.flashVer, /^WEB /);
    assert.deepEqual(args, ["nick", 5, { role: "guest" }]);
    if (enc === 3) assert.ok(connect.payload.includes(0x11), "arguments behind AVM+ switches");
    // The client asked for a large chunk size before connect, answered
    // SetPeerBandwidth with its window, and is connected.
    assert.equal(srv.messages.find((m) => m.type === 1).payload.join(), "0,1,0,0");
    const win = await srv.next((m) => m.type === 5, "WindowAckSize");
    assert.equal(new DataView(win.payload.buffer, win.payload.byteOffset).getUint32(0), 2500000);
    assert.ok(nc.connected);
    assert.equal(nc.uri, "rtmpws://example.com:8080/chat/room1");
    // Ping request -> ping response with the same time.
    srv.sendMessage({ csid: 2, type: 4, streamId: 0, timestamp: 0, payload: Uint8Array.of(0, 6, 1, 2, 3, 4) });
    const pong = await srv.next((m) => m.type === 4, "ping response");
    assert.equal(pong.payload.join(), "0,7,1,2,3,4");
    nc.close();
  });

  test(`call (objectEncoding ${enc}): results, errors, responders, callAsync`, async () => {
    const { srv, nc } = await connected(enc);
    let got;
    nc.call("add", new Responder((r) => { got = r; }), 2, 3);
    const c = await srv.command("add");
    assert.equal(c.type, enc === 3 ? 17 : 20);
    assert.deepEqual(c.vals.slice(2), [null, 2, 3]);
    srv.sendCommand(["_result", c.vals[1], null, 5], { amf3: enc === 3 });
    const p = nc.callAsync("div", 1, 0);
    const d = await srv.command("div");
    assert.notEqual(d.vals[1], c.vals[1], "a new transaction id");
    srv.sendCommand(["_error", d.vals[1], null, { level: "error", code: "NetConnection.Call.Failed", description: "division by zero", application: { code: 7 } }]);
    await assert.rejects(p, (e) => e instanceof CallError && e.code === "NetConnection.Call.Failed" && e.application.code === 7 && e.info.description === "division by zero");
    assert.equal(got, 5);
    // No responder: transaction 0 (no reply asked).
    nc.call("log", null, "x");
    assert.equal((await srv.command("log")).vals[1], 0);
    // Pending calls fail when the connection closes.
    const q = nc.callAsync("slow");
    await srv.command("slow");
    const closed = waitStatus(nc, "NetConnection.Connect.Closed");
    srv.close();
    await assert.rejects(q, (e) => e.code === "NetConnection.Call.Failed");
    await closed;
    assert.equal(nc.connected, false);
    // A call on a closed connection fails too, asynchronously.
    await assert.rejects(nc.callAsync("add", 1, 2), (e) => e.code === "NetConnection.Call.Failed");
  });

  test(`server calls (objectEncoding ${enc}): client methods, return values, promises, errors`, async () => {
    const { srv, nc } = await connected(enc);
    nc.client = {
      ping(x) { return x + 1; },
      later(x) { return Promise.resolve(x * 2); },
      boom() { throw new Error("kaput"); },
    };
    const errors = [];
    nc.addEventListener("asyncError", (e) => errors.push(e.error));
    const origError = console.error;
    console.error = () => {};
    try {
      srv.sendCommand(["ping", 5, null, 41], { amf3: enc === 3 });
      let r = await srv.command("_result");
      assert.deepEqual(r.vals, ["_result", 5, null, 42]);
      srv.sendCommand(["later", 6, null, 4]);
      r = await srv.command("_result");
      assert.deepEqual(r.vals, ["_result", 6, null, 8]);
      srv.sendCommand(["boom", 7, null]);
      r = await srv.command("_error");
      assert.equal(r.vals[1], 7);
      assert.equal(r.vals[3].code, "NetConnection.Call.Failed");
      assert.match(r.vals[3].description, /kaput/);
      // The default client is the NetConnection: its own methods are not
      // the server's to call.
      nc.client = nc;
      srv.sendCommand(["call", 10, null, "x", null]);
      r = await srv.command("_error");
      assert.equal(r.vals[3].description, "Method not found (call).");
      nc.client = { ping(x) { return x + 1; }, later(x) { return Promise.resolve(x * 2); }, boom() { throw new Error("kaput"); } };
      srv.sendCommand(["nosuch", 8, null]);
      r = await srv.command("_error");
      assert.equal(r.vals[3].description, "Method not found (nosuch).");
      // Transaction 0: run, never answered. onBWDone/onBWCheck have defaults.
      srv.sendCommand(["ping", 0, null, 1]);
      srv.sendCommand(["onBWCheck", 9, null, ""]);
      r = await srv.command("_result");
      assert.deepEqual(r.vals.slice(0, 2), ["_result", 9]);
      srv.sendCommand(["onBWDone", 0, null, 1000]);
      // Server onStatus on the connection.
      const st = waitStatus(nc, "NetConnection.Connect.ReconnectRequest");
      srv.sendCommand(["onStatus", 0, null, { level: "status", code: "NetConnection.Connect.ReconnectRequest" }]);
      await st;
      assert.equal(errors.length, 3, "boom, call and nosuch reported");
    } finally { console.error = origError; }
    nc.close();
  });
}

test("connect rejected: Rejected with the script's object, then Closed", async () => {
  const srv = new FakeServer();
  const nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  const codes = [];
  nc.onStatus = (i) => codes.push(i);
  nc.connect("rtmpws://h/lobby");
  await srv.command("connect");
  const closed = waitStatus(nc, "NetConnection.Connect.Closed");
  srv.sendCommand(["_error", 1, null, { level: "error", code: "NetConnection.Connect.Rejected", description: "A nickname is required.", application: { reason: "nonick" } }]);
  await closed;
  assert.deepEqual(codes.map((i) => i.code), ["NetConnection.Connect.Rejected", "NetConnection.Connect.Closed"]);
  assert.equal(codes[0].application.reason, "nonick");
  assert.equal(nc.connected, false);
  assert.ok(srv.closedByClient);
});

test("connect failures: refused socket, socket closed during connect, timeout, garbage", async () => {
  // Refused.
  let srv = new FakeServer();
  srv.refuse = true;
  let nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  let failed = waitStatus(nc, "NetConnection.Connect.Failed");
  nc.connect("rtmpws://h/app");
  await failed;
  // Closed after the handshake, before the reply.
  srv = new FakeServer();
  nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  failed = waitStatus(nc, "NetConnection.Connect.Failed");
  nc.connect("rtmpws://h/app");
  await srv.command("connect");
  srv.close();
  assert.match((await failed).description, /before the reply to connect/);
  // No reply within connectTimeout.
  srv = new FakeServer();
  nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  nc.connectTimeout = 50;
  failed = waitStatus(nc, "NetConnection.Connect.Failed");
  nc.connect("rtmpws://h/app");
  assert.match((await failed).description, /timed out/);
  assert.ok(srv.closedByClient, "socket closed");
  // A bad S0.
  srv = new FakeServer();
  nc = new NetConnection();
  nc.WebSocket = srv.WebSocket;
  srv.version = 9;
  failed = waitStatus(nc, "NetConnection.Connect.Failed");
  nc.connect("rtmpws://h/app");
  assert.match((await failed).description, /version 9/);
});

test("a message over the size limit closes the connection with a status", async () => {
  const { srv, nc } = await connected(0);
  nc._reader.maxMessageSize = 1000; // as nc.maxMessageSize before connect
  const closed = waitStatus(nc, "NetConnection.Connect.Closed");
  srv.send(Uint8Array.of(0x06, 0, 0, 0, 0, 0x10, 0, 9, 1, 0, 0, 0));
  assert.match((await closed).description, /exceeds the limit/);
  assert.ok(srv.closedByClient);
  assert.equal(nc.connected, false);
});

test("acknowledgements follow the server's window", async () => {
  const { srv, nc } = await connected(0);
  srv.sendMessage({ csid: 2, type: 5, streamId: 0, timestamp: 0, payload: u32(10000) });
  const big = new Uint8Array(4000);
  for (let i = 0; i < 4; i++) srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: i, payload: big });
  const ack = await srv.next((m) => m.type === 3, "Ack");
  const n = new DataView(ack.payload.buffer, ack.payload.byteOffset).getUint32(0);
  // Sent while reading the message that crossed the window: the count of
  // every byte the server had delivered then, handshake included.
  assert.equal(n, ack.delivered);
  assert.ok(n >= 10000 && n < 10000 + 4100 + 3100, `ack ${n}`);
  nc.close();
});

for (const enc of [0, 3]) {
  test(`SharedObject (objectEncoding ${enc}): use, sync list, change, success, reject, delete, send`, async () => {
    const { srv, nc } = await connected(enc);
    const amf3 = enc === 3;
    const so = SharedObject.getRemote("room", nc.uri, false);
    assert.equal(SharedObject.getRemote("room", nc.uri, false), so, "getRemote returns the same object");
    const syncs = [];
    so.onSync = (l) => syncs.push(l);
    const events = [];
    so.addEventListener("sync", (e) => events.push(e.changeList));
    const msgs = [];
    so.msg = function (from, text) { msgs.push([this === so, from, text]); };
    so.connect(nc);
    const use = await srv.next((m) => m.so, "SO use");
    assert.equal(use.type, amf3 ? 16 : 19);
    assert.deepEqual([use.so.name, use.so.version, use.so.persistent, use.so.events.map((e) => e.type)], ["room", 0, false, [SOEvent.USE]]);
    srv.sendSO({ name: "room", version: 4, events: [{ type: SOEvent.USE_SUCCESS }, { type: SOEvent.CLEAR }, { type: SOEvent.CHANGE, name: "topic", value: "welcome" }, { type: SOEvent.CHANGE, name: "n", value: 1 }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(syncs.shift(), [{ code: "clear" }, { code: "change", name: "topic", oldValue: undefined }, { code: "change", name: "n", oldValue: undefined }]);
    assert.equal(events.length, 1);
    assert.equal(so.data.topic, "welcome");
    assert.equal(so.version, 4);
    // setProperty: local at once, RequestChange with the current version, Success.
    so.setProperty("topic", "x");
    assert.equal(so.data.topic, "x");
    let m = await srv.next((x) => x.so, "RequestChange");
    assert.deepEqual([m.so.version, m.so.events[0].type, m.so.events[0].name, m.so.events[0].value], [4, SOEvent.REQUEST_CHANGE, "topic", "x"]);
    srv.sendSO({ name: "room", version: 5, events: [{ type: SOEvent.SUCCESS, name: "topic" }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(syncs.shift(), [{ code: "success", name: "topic", oldValue: null }]);
    // Assigning to data requests a change as well; a Change for a pending
    // slot is a reject, and the server's value stands.
    so.data.n = 2;
    m = await srv.next((x) => x.so, "RequestChange n");
    assert.equal(m.so.events[0].value, 2);
    srv.sendSO({ name: "room", version: 6, events: [{ type: SOEvent.CHANGE, name: "n", value: 9 }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(syncs.shift(), [{ code: "reject", name: "n", oldValue: 2 }]);
    assert.equal(so.data.n, 9);
    // A Success arriving after all (the change was accepted in a later
    // interval): our value is restored, so every client converges.
    srv.sendSO({ name: "room", version: 7, events: [{ type: SOEvent.SUCCESS, name: "n" }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(syncs.shift(), [{ code: "success", name: "n", oldValue: null }]);
    assert.equal(so.data.n, 2);
    // A change by another client.
    srv.sendSO({ name: "room", version: 8, events: [{ type: SOEvent.CHANGE, name: "n", value: 3 }, { type: SOEvent.REMOVE, name: "topic" }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(syncs.shift(), [{ code: "change", name: "n", oldValue: 2 }, { code: "delete", name: "topic", oldValue: "x" }]);
    assert.equal("topic" in so.data, false);
    // Deleting: RequestRemove.
    delete so.data.n;
    m = await srv.next((x) => x.so, "RequestRemove");
    assert.deepEqual([m.so.events[0].type, m.so.events[0].name], [SOEvent.REQUEST_REMOVE, "n"]);
    // send: SendMessage with the handler as an AMF0 string; the server's
    // relay invokes so.client's handler.
    so.send("msg", "me", { t: "hi" });
    m = await srv.next((x) => x.so, "SendMessage");
    assert.deepEqual([m.so.events[0].type, m.so.events[0].handler, m.so.events[0].args], [SOEvent.SEND_MESSAGE, "msg", ["me", { t: "hi" }]]);
    srv.sendSO({ name: "room", version: 9, events: [{ type: SOEvent.SEND_MESSAGE, handler: "msg", args: ["ann", "hello"] }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(msgs, [[true, "ann", "hello"]]);
    // A peer's send of a built-in method name is no handler: the object
    // stays subscribed (a missing handler is an asyncError event).
    const asyncErrors = [];
    so.addEventListener("asyncError", (e) => asyncErrors.push(e.error.message));
    const origError = console.error;
    console.error = () => {};
    srv.sendSO({ name: "room", version: 9, events: [{ type: SOEvent.SEND_MESSAGE, handler: "close", args: [] }, { type: SOEvent.SEND_MESSAGE, handler: "setProperty", args: ["x", 1] }] }, amf3);
    await new Promise((r) => setTimeout(r, 10));
    console.error = origError;
    assert.equal(so._connected, true);
    assert.equal(asyncErrors.length, 2);
    assert.equal("x" in so.data, false);
    // Status: a netStatus event.
    const st = waitStatus(so, "SharedObject.NoWriteAccess");
    srv.sendSO({ name: "room", version: 9, events: [{ type: SOEvent.STATUS, code: "SharedObject.NoWriteAccess", level: "error" }] }, amf3);
    assert.equal((await st).level, "error");
    // close: Release; further server messages are ignored.
    so.close();
    m = await srv.next((x) => x.so, "Release");
    assert.equal(m.so.events[0].type, SOEvent.RELEASE);
    assert.notEqual(SharedObject.getRemote("room", nc.uri, false), so, "closed objects leave the getRemote cache");
    nc.close();
  });
}

test("NetStream: createStream, play, statuses, data handlers, media to FLV, close", async () => {
  const { srv, nc } = await connected(3);
  const ns = new NetStream(nc);
  const cs = await srv.command("createStream");
  const statuses = [];
  ns.onStatus = (i) => statuses.push(i.code);
  const md = [];
  const cues = [];
  ns.client = { onMetaData(m) { md.push(m); }, onCuePoint(c) { cues.push(c); } };
  ns.play("livestream", -1);
  srv.sendCommand(["_result", cs.vals[1], null, 7], { amf3: true });
  const play = await srv.command("play");
  assert.equal(play.streamId, 7);
  assert.deepEqual(play.vals, ["play", 0, null, "livestream", -1000]);
  const sbl = await srv.next((m) => m.type === 4, "SetBufferLength");
  assert.equal(sbl.payload.join(), "0,3,0,0,0,7,0,0,0,100");
  srv.sendCommand(["onStatus", 0, null, { level: "status", code: "NetStream.Play.Reset" }], { streamId: 7 });
  srv.sendCommand(["onStatus", 0, null, { level: "status", code: "NetStream.Play.Start" }], { streamId: 7 });
  srv.sendData(["|RtmpSampleAccess", false, false], 7);
  srv.sendData(["onStatus", { code: "NetStream.Data.Start" }], 7);
  srv.sendData(["@setDataFrame", "onMetaData", amf.ecmaArray({ width: 640, videocodecid: 7 })], 7);
  srv.sendData(["onCuePoint", { name: "c1" }], 7);
  srv.sendCommand(["onCuePoint", 0, null, { name: "c2" }], { streamId: 7 }); // a command on the stream reaches the client too
  srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: 0, payload: Uint8Array.of(0x17, 0, 0, 0, 0, 0xaa) }); // AVC sequence header
  srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: 40, payload: Uint8Array.of(0x27, 1, 0, 0, 0, 0xbb) });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(statuses, ["NetStream.Play.Reset", "NetStream.Play.Start", "NetStream.Data.Start"]);
  assert.deepEqual(md.map((m) => m.width), [640]);
  assert.deepEqual(cues, [{ name: "c1" }, { name: "c2" }]);
  // No video element yet: nothing is remuxed.
  assert.equal(ns._flvQueue.length, 0);
  // A stand-in for mpegts.js (window.mpegts): its player instantiates the
  // customLoader and collects what the loader hands it.
  const got = [];
  let source = null, config = null, calls = [];
  globalThis.mpegts = {
    createPlayer(ds, cfg) {
      source = ds; config = cfg;
      let loader;
      return {
        attachMediaElement(v) { calls.push(["attach", v.id]); },
        load() {
          loader = new cfg.customLoader(null, cfg);
          loader.onDataArrival = (buf, start, end) => got.push([new Uint8Array(buf), start, end]);
          loader.open({ url: ds.url });
          calls.push(["load", loader.status]);
        },
        play() { calls.push(["play"]); return Promise.resolve(); },
        pause() {}, unload() { loader.abort(); calls.push(["unload"]); }, detachMediaElement() {}, destroy() { loader.destroy(); calls.push(["destroy"]); },
      };
    },
  };
  try {
    // Attached late: metadata and the sequence header first, then media
    // from the next keyframe on.
    ns.attach({ id: "v" });
    await new Promise((r) => setTimeout(r, 10));
    srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: 80, payload: Uint8Array.of(0x27, 1, 0, 0, 0, 0xcc) });
    srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: 120, payload: Uint8Array.of(0x17, 1, 0, 0, 0, 0xdd) });
    srv.sendMessage({ csid: 6, type: 9, streamId: 7, timestamp: 160, payload: Uint8Array.of(0x27, 1, 0, 0, 0, 0xee) });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([source.type, source.isLive, source.hasAudio, source.hasVideo], ["flv", true, false, true]);
    assert.equal(typeof config.customLoader, "function");
    assert.deepEqual(calls, [["attach", "v"], ["load", 2], ["play"]]);
    const bytes = Buffer.concat(got.map(([b]) => b));
    // Offsets run on without gaps.
    let off = 0;
    for (const [b, start, end] of got) { assert.equal(start, off); off += b.length; assert.equal(end, off); }
    const flv = bytes.toString("hex");
    assert.ok(flv.startsWith("464c5601010000000900000000"), flv.slice(0, 40));
    const tags = [];
    for (let o = 13; o < bytes.length;) {
      const size = bytes.readUIntBE(o + 1, 3);
      tags.push([bytes[o], bytes.readUIntBE(o + 4, 3), bytes.subarray(o + 11, o + 11 + size).toString("hex")]);
      assert.equal(bytes.readUInt32BE(o + 11 + size), 11 + size, "previous tag size");
      o += 15 + size;
    }
    assert.equal(tags[0][0], 18, "onMetaData first");
    assert.deepEqual(tags.slice(1), [[9, 0, "1700000000aa"], [9, 120, "1701000000dd"], [9, 160, "2701000000ee"]]);
  } finally {
    delete globalThis.mpegts;
  }
  ns.close();
  assert.deepEqual(calls.slice(-2), [["unload"], ["destroy"]]);
  const del = await srv.command("deleteStream");
  assert.deepEqual(del.vals, ["deleteStream", 0, null, 7]);
  assert.equal(del.streamId, 0);
  nc.close();
});
