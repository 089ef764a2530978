// The library against a real hub over WebSocket. Run by the Go test
// e2e/sdk_node_test.go, which starts the hub with its test application
// (sdkjs) and sets RTMPHUB_TEST_HUBS to "host:port host:port" (the HTTP
// port and the RTMP port, which answers WebSockets too). Skipped without it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { NetConnection, SharedObject, Responder } from "../rtmphub.js";

const hubs = (process.env.RTMPHUB_TEST_HUBS || "").split(/\s+/).filter(Boolean);
const skip = hubs.length === 0 ? "RTMPHUB_TEST_HUBS not set (run by e2e/sdk_node_test.go)" : false;

// connect resolves with the final status of a connect: Success, or the
// Rejected info (after the Closed that follows it), or Failed.
const opened = [];
// A failed test leaves nothing open that would keep node from exiting.
after(() => { for (const nc of opened) nc.close(); });

function connect(url, enc, client, ...args) {
  const nc = new NetConnection();
  opened.push(nc);
  nc.objectEncoding = enc;
  if (client) nc.client = client;
  const seen = [];
  const done = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${url}: no connect result in 10s (${JSON.stringify(seen)})`)), 10000);
    nc.onStatus = (info) => {
      seen.push(info);
      if (info.code === "NetConnection.Connect.Success" || info.code === "NetConnection.Connect.Failed" ||
          (info.code === "NetConnection.Connect.Closed" && seen.length > 1)) {
        clearTimeout(t);
        resolve(seen);
      }
    };
  });
  nc.connect(url, ...args);
  return { nc, done };
}

function until(cond, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

for (const [i, hub] of hubs.entries()) {
  for (const enc of [0, 3]) {
    const base = `rtmpws://${hub}/sdkjs/i${i}e${enc}${process.env.RTMPHUB_TEST_SUFFIX || ""}`;
    test(`${hub} objectEncoding ${enc}: connect with arguments, calls both ways`, { skip }, async () => {
      const pings = [];
      const { nc, done } = connect(base, enc, { ping(x) { pings.push(x); return { got: x, plus: x + 1 }; } }, "ann", 7);
      const st = await done;
      assert.equal(st.at(-1).code, "NetConnection.Connect.Success", JSON.stringify(st));
      assert.equal(nc.objectEncoding, enc, "the server echoes the encoding");
      // Arguments reached onConnect; the protocol is rtmpws.
      assert.deepEqual(await nc.callAsync("info"), { nick: "ann", n: 7, protocol: "rtmpws" });
      // A call with a result, through a Responder and through callAsync.
      const viaResponder = await new Promise((resolve, reject) => nc.call("add", new Responder(resolve, reject), 2, 3));
      assert.equal(viaResponder, 5);
      assert.equal(await nc.callAsync("add", 40, 2), 42);
      // Values survive the trip through the script in this encoding.
      const v = { s: "héllo", n: 1.5, b: true, nul: null, list: [1, "two", { three: 3 }], when: new Date(86400000) };
      assert.deepEqual(await nc.callAsync("echo", v), v);
      // A script error is a rejected promise with the info object.
      await assert.rejects(nc.callAsync("fail", "why"), (e) => e.code === "NetConnection.Call.Failed");
      // The server calls the page's client.ping; its return value reaches the script.
      assert.equal(await nc.callAsync("askPing", 41), "asked");
      await until(() => pings.length === 1, "client.ping");
      let pong = null;
      for (let k = 0; k < 100 && pong === null; k++) {
        pong = await nc.callAsync("lastPong");
        if (pong === null) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(pong, { got: 41, plus: 42 });
      nc.close();
    });

    test(`${hub} objectEncoding ${enc}: a rejected connect shows the script's info object`, { skip }, async () => {
      const { nc, done } = connect(base, enc, null, "bad", 1);
      const st = await done;
      assert.deepEqual(st.map((s) => s.code), ["NetConnection.Connect.Rejected", "NetConnection.Connect.Closed"]);
      assert.equal(st[0].level, "error");
      assert.deepEqual(st[0].application, { description: "no bad nicks", reason: "bad", n: 1 });
      assert.equal(nc.connected, false);
    });

    test(`${hub} objectEncoding ${enc}: a SharedObject change reaches a second connection`, { skip }, async () => {
      const a = connect(base + "so", enc, null, "a", 1);
      const b = connect(base + "so", enc, null, "b", 2);
      assert.equal((await a.done).at(-1).code, "NetConnection.Connect.Success");
      assert.equal((await b.done).at(-1).code, "NetConnection.Connect.Success");
      const sa = SharedObject.getRemote("room", a.nc.uri, false);
      const sb = SharedObject.getRemote("room", b.nc.uri + "#b", false); // another object: the cache is per uri
      const syncA = [], syncB = [], msgsB = [];

      sa.onSync = (l) => syncA.push(...l);
      sb.onSync = (l) => syncB.push(...l);
      sb.msg = (from, text) => msgsB.push([from, text]);
      sa.connect(a.nc);
      sb.connect(b.nc);
      await until(() => syncA.some((c) => c.code === "clear") && syncB.some((c) => c.code === "clear"), "first syncs");
      assert.equal(sb.data.topic, "welcome", "the script's slot");
      // A slot the script does not write (the script's own write of
      // "topic" at start may still be in its first sync interval, where
      // the first writer wins).
      sa.setProperty("note", { text: "from a", at: 1 });
      await until(() => syncA.some((c) => c.code === "success" && c.name === "note"), `success at a: ${JSON.stringify(syncA)}`);
      await until(() => syncB.some((c) => c.code === "change" && c.name === "note"), "change at b");
      assert.deepEqual(sb.data.note, { text: "from a", at: 1 });
      // A slot the script sets in answer to a client's call.
      assert.equal(await b.nc.callAsync("setSlot", "count", 3), true);
      await until(() => sa.data.count === 3, "script change at a");
      // A slot deleted by a client: delete at the other.
      delete sa.data.count;
      await until(() => syncB.some((c) => c.code === "delete" && c.name === "count"), "delete at b");
      // send(): every subscriber's handler, the sender's included.
      sa.msg = () => {};
      sa.send("msg", "a", "hi");
      await until(() => msgsB.length === 1, "message at b");
      assert.deepEqual(msgsB[0], ["a", "hi"]);
      // A ByteArray slot in AMF3 (an AMF0 client reads it through AVM+).
      sa.setProperty("bytes", new Uint8Array([1, 2, 3]));
      await until(() => sb.data.bytes instanceof Uint8Array, "byte array at b");
      assert.deepEqual([...sb.data.bytes], [1, 2, 3]);
      sa.close(); sb.close();
      a.nc.close(); b.nc.close();
    });
  }
}

test("hub: NetConnection to a port with nothing behind it fails", { skip }, async () => {
  const { done } = connect("rtmpws://127.0.0.1:1/sdkjs", 3);
  const st = await done;
  assert.equal(st.at(-1).code, "NetConnection.Connect.Failed");
});
