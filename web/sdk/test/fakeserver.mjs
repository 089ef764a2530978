// FakeServer: an in-memory RTMP server behind a fake WebSocket class, for
// message-level tests of NetConnection, SharedObject and NetStream. It
// speaks through the library's own chunk and AMF code (tested on their own
// against the server codec's tables), records what the client sends and
// lets a test answer.
import { ChunkReader, ChunkWriter, MessageType, amf, decodeSharedObject, encodeSharedObject } from "../rtmphub.js";

export class FakeServer {
  constructor() {
    this.messages = [];   // decoded client messages: {type, streamId, vals?|so?|payload}
    this.waiters = [];
    this.ws = null;
    this.received = 0;
    this.protocols = null;
    this.url = null;
    const server = this;
    this.WebSocket = class {
      constructor(url, protocols) {
        server.ws = this;
        server.url = url;
        server.protocols = protocols;
        this.readyState = 0;
        this.bufferedAmount = 0;
        this.binaryType = "blob";
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        queueMicrotask(() => { if (server.refuse) { this.readyState = 3; this.onclose && this.onclose({ code: 1006, reason: "" }); return; } this.readyState = 1; this.onopen && this.onopen({}); });
      }
      send(b) { server._fromClient(new Uint8Array(b)); }
      close(code) { if (this.readyState === 3) return; this.readyState = 3; server.closedByClient = code || 1000; }
    };
    this.reader = new ChunkReader();
    this.writer = new ChunkWriter();
    this.hs = new Uint8Array(0);
    this.handshaken = false;
  }
  _fromClient(b) {
    this.received += b.length;
    if (!this.handshaken) {
      this.hs = new Uint8Array([...this.hs, ...b]);
      if (this.hs.length >= 1537 && !this.sentS) {
        this.sentS = true;
        this.c1 = this.hs.slice(1, 1537);
        const s = new Uint8Array(1 + 1536 * 2);
        s[0] = this.version || 3;
        for (let i = 1; i < 1537; i++) s[i] = i & 0xff;
        s.set(this.c1, 1537);
        this.send(s);
      }
      if (this.hs.length < 1537 + 1536) return;
      this.c2 = this.hs.slice(1537, 1537 + 1536);
      this.handshaken = true;
      b = this.hs.subarray(1537 + 1536);
      if (b.length === 0) return;
    }
    for (const m of this.reader.push(b)) this._record(m);
  }
  _record(m) {
    const r = { type: m.type, streamId: m.streamId, timestamp: m.timestamp, payload: m.payload, delivered: this.delivered || 0 };
    if (m.type === MessageType.COMMAND_AMF0 || m.type === MessageType.COMMAND_AMF3 || m.type === MessageType.DATA_AMF0) {
      r.vals = amf.decode0(m.type === MessageType.COMMAND_AMF3 ? m.payload.subarray(1) : m.payload);
    } else if (m.type === MessageType.SO_AMF0 || m.type === MessageType.SO_AMF3) {
      r.so = decodeSharedObject(m.payload, m.type === MessageType.SO_AMF3);
    }
    this.messages.push(r);
    for (const w of [...this.waiters]) if (w.match(r)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(r); }
  }
  /** next(match): the first client message (already received or to come) that matches; 2 s bound. */
  next(match, what = "message") {
    const i = this.messages.findIndex((m) => !m.taken && match(m));
    if (i >= 0) { this.messages[i].taken = true; return Promise.resolve(this.messages[i]); }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${what} from the client within 2s`)), 2000);
      this.waiters.push({ match, resolve: (m) => { clearTimeout(t); m.taken = true; resolve(m); } });
    });
  }
  command(name) { return this.next((m) => m.vals && m.vals[0] === name, `command ${name}`); }
  send(bytes) {
    const ws = this.ws;
    queueMicrotask(() => {
      this.delivered = (this.delivered || 0) + bytes.length;
      if (ws.onmessage) ws.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
    });
  }
  sendMessage(m) { this.send(this.writer.write(m)); }
  setChunkSize(n) {
    this.sendMessage({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: Uint8Array.of(n >>> 24, n >>> 16, n >>> 8, n) });
    this.writer.chunkSize = n;
  }
  /** sendCommand(vals, {amf3, streamId}). */
  sendCommand(vals, { amf3 = false, streamId = 0, type } = {}) {
    const body = amf.encode0(...vals);
    const payload = amf3 ? new Uint8Array([0, ...body]) : body;
    this.sendMessage({ csid: 3, type: type || (amf3 ? 17 : 20), streamId, timestamp: 0, payload });
  }
  sendData(vals, streamId) { this.sendMessage({ csid: 5, type: 18, streamId, timestamp: 0, payload: amf.encode0(...vals) }); }
  sendSO(msg, amf3) { this.sendMessage({ csid: 3, type: amf3 ? 16 : 19, streamId: 0, timestamp: 0, payload: encodeSharedObject(msg, amf3) }); }
  close(code = 1006) { const ws = this.ws; ws.readyState = 3; queueMicrotask(() => ws.onclose && ws.onclose({ code, reason: "" })); }
}

/** waitStatus(target, code): the next netStatus info with that code (2 s bound). */
export function waitStatus(target, code) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${code} within 2s`)), 2000);
    const f = (e) => { if (e.info.code === code) { clearTimeout(t); target.removeEventListener("netStatus", f); resolve(e.info); } };
    target.addEventListener("netStatus", f);
  });
}
