// TCPWebSocket: the browser WebSocket API over a plain TCP connection, so
// that node tests can run the library against a hub's RTMP port (raw RTMP,
// no WebSocket framing). The URL's host and port are used; the path is not.
import net from "node:net";

export class TCPWebSocket {
  constructor(url) {
    const u = new URL(url);
    this.url = url;
    this.readyState = 0;
    this.binaryType = "arraybuffer";
    this.bufferedAmount = 0;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.sock = net.connect(Number(u.port), u.hostname);
    this.sock.on("connect", () => { this.readyState = 1; this.onopen && this.onopen({}); });
    this.sock.on("data", (b) => {
      const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
      this.onmessage && this.onmessage({ data: ab });
    });
    this.sock.on("error", () => { this.onerror && this.onerror({}); });
    this.sock.on("close", () => {
      const was = this.readyState;
      this.readyState = 3;
      if (was !== 3) this.onclose && this.onclose({ code: 1006, reason: "" });
    });
  }
  send(b) { this.sock.write(b); }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.sock.end();
    setTimeout(() => this.sock.destroy(), 100).unref();
    this.onclose && this.onclose({ code: 1000, reason: "" });
  }
}
