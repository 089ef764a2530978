# A chat client of the chat example application (testdata/apps/chat)
# made of python3-librtmp, for the browser chat tests: the real librtmp
# (AMF0) in the same room as pages using the JavaScript library.
#
# python3-librtmp has calls but no SharedObject API: the SharedObject
# messages (RTMP type 0x13, AMF0) are built and read here from their
# bytes and go through librtmp's raw packet API (RTMPPacket,
# send_packet, read_packet).
#
# argv: URL nickname. Commands come on stdin, one JSON object a line:
#   {"op": "use"}                          subscribe to SharedObject "room"
#   {"op": "set", "key": k, "value": v}    ask to change slot k
#   {"op": "send", "handler": h, "args": [...]}   SharedObject send
#   {"op": "call", "method": m, "args": [...]}    call a method (result: an event)
#   {"op": "quit"}
# Events go to stdout, one JSON object a line:
#   {"ev": "connect", "code": ..., "description": ...}
#   {"ev": "result", "id": n, "ok": bool, "value": ...}
#   {"ev": "so", "type": "change"|"success"|"send"|"use"|"clear"|"remove"|"status",
#    "version": n, "key": ..., "value": ..., "handler": ..., "args": [...]}
#   {"ev": "closed", "why": ...}
import json
import struct
import sys
import threading

import librtmp
from librtmp.amf import decode_amf, encode_amf
from librtmp.packet import (PACKET_SIZE_LARGE, PACKET_TYPE_INVOKE,
                            PACKET_TYPE_SHARED_OBJECT, RTMPPacket)

url, nick = sys.argv[1], sys.argv[2]
SO_NAME = "room"

out_lock = threading.Lock()


def emit(**ev):
    with out_lock:
        print(json.dumps(ev, default=str), flush=True)


# librtmp writes from both threads (the reader's acknowledgements and
# control answers, the commands here): one send at a time.
send_lock = threading.Lock()

c = librtmp.RTMP(url + " conn=S:" + nick, live=True, timeout=60)
c.connect()


def so_string(s):
    b = s.encode("utf8")
    return struct.pack(">H", len(b)) + b


def so_message(events):
    body = so_string(SO_NAME) + struct.pack(">III", 0, 0, 0)  # version, flags (transient), reserved
    for etype, data in events:
        body += struct.pack(">BI", etype, len(data)) + data
    return body


def send_so(events):
    p = RTMPPacket(type=PACKET_TYPE_SHARED_OBJECT, format=PACKET_SIZE_LARGE, channel=0x03,
                   body=so_message(events))
    with send_lock:
        c.send_packet(p, queue=False)


def amf_values(b):
    return decode_amf(b) if b else []


def read_so(body):
    """Decodes a SharedObject message into events."""
    n = struct.unpack(">H", body[:2])[0]
    name = body[2:2 + n].decode("utf8")
    off = 2 + n
    version = struct.unpack(">I", body[off:off + 4])[0]
    off += 12
    while off < len(body):
        etype, ln = struct.unpack(">BI", body[off:off + 5])
        off += 5
        data = body[off:off + ln]
        off += ln
        ev = {"ev": "so", "name": name, "version": version}
        if etype in (4, 5, 9):  # change, success, remove: key [value]
            kn = struct.unpack(">H", data[:2])[0]
            ev["key"] = data[2:2 + kn].decode("utf8")
            ev["type"] = {4: "change", 5: "success", 9: "remove"}[etype]
            vals = amf_values(data[2 + kn:])
            if etype == 4:
                ev["value"] = vals[0] if vals else None
        elif etype == 6:
            vals = amf_values(data)
            ev["type"], ev["handler"], ev["args"] = "send", vals[0], vals[1:]
        elif etype == 7:
            kn = struct.unpack(">H", data[:2])[0]
            ev["type"], ev["code"] = "status", data[2:2 + kn].decode("utf8")
        else:
            ev["type"] = {8: "clear", 11: "use"}.get(etype, "type%d" % etype)
        emit(**ev)


def reader():
    while True:
        try:
            p = c.read_packet()
        except librtmp.RTMPTimeoutError:
            continue
        except Exception as e:  # the connection ended
            emit(ev="closed", why=str(e))
            return
        if p.type == PACKET_TYPE_SHARED_OBJECT:
            read_so(p.body)
        elif p.type == PACKET_TYPE_INVOKE:
            v = decode_amf(p.body)
            if len(v) >= 3 and v[0] in ("_result", "_error"):
                if v[1] == 1.0:  # connect
                    info = v[3] if len(v) > 3 and isinstance(v[3], dict) else {}
                    emit(ev="connect", code=info.get("code"), description=info.get("description"))
                else:
                    emit(ev="result", id=int(v[1]), ok=v[0] == "_result", value=v[3] if len(v) > 3 else None)
            elif v and v[0] == "onStatus":
                emit(ev="status", info=v[3] if len(v) > 3 else None)
            else:
                emit(ev="invoke", method=v[0] if v else None, args=v[3:])
        else:
            with send_lock:
                c.handle_packet(p)  # chunk size, window, ping...


threading.Thread(target=reader, daemon=True).start()

next_id = 1
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "quit":
        break
    if op == "use":
        send_so([(1, b"")])
    elif op == "set":
        send_so([(3, so_string(cmd["key"]) + encode_amf(cmd["value"]))])
    elif op == "send":
        send_so([(6, encode_amf(cmd["handler"]) + b"".join(encode_amf(a) for a in cmd.get("args", [])))])
    elif op == "call":
        next_id += 1
        body = b"".join(encode_amf(x) for x in [cmd["method"], float(next_id), None] + cmd.get("args", []))
        with send_lock:
            c.send_packet(RTMPPacket(type=PACKET_TYPE_INVOKE, format=PACKET_SIZE_LARGE, channel=0x03, body=body), queue=False)
        emit(ev="called", id=next_id, method=cmd["method"])
c.close()
