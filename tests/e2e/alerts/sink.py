"""Loopback receivers for the alerts tests, real servers of their protocol.

    python3 sink.py smtp DIR PORT   an SMTP server (aiosmtpd); each message received is written
                                    as DIR/NNNN.json: envelope, headers, both body parts, and each
                                    inline image with its PNG decoded (size checked).
    python3 sink.py http DIR PORT   an HTTP server taking POSTs (a Slack incoming webhook); each
                                    body is written as DIR/NNNN.json.

Prints "ready" once listening; runs until killed.
"""
import email
import email.policy
import json
import os
import struct
import sys
import threading
import time
import zlib


def decode_png(data):
    """Width, height and whether the pixels decompress to exactly what IHDR says (8-bit RGB)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return {"png": False}
    pos, idat, width, height, colour = 8, b"", 0, 0, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4, 0: 1}.get(colour, 3)
    return {"png": len(raw) == height * (1 + width * channels), "width": width, "height": height}


class Counter:
    def __init__(self, out):
        self.out, self.n, self.lock = out, 0, threading.Lock()

    def write(self, record, raw=None):
        with self.lock:
            self.n += 1
            path = os.path.join(self.out, "%04d.json" % self.n)
        if raw is not None:
            # The message as received, for a person to open.
            with open(path[:-5] + ".eml", "wb") as f:
                f.write(raw)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f, indent=1)
        os.rename(path + ".tmp", path)


def smtp(out, port):
    from aiosmtpd.controller import Controller

    counter = Counter(out)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            raw = envelope.original_content or envelope.content
            message = email.message_from_bytes(raw, policy=email.policy.default)
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_to": envelope.rcpt_tos,
                "subject": message["subject"],
                "to": message["to"],
                "message_id": message["message-id"],
                "content_type": message.get_content_type(),
                "text": None,
                "html": None,
                "images": [],
            }
            for part in message.walk():
                kind = part.get_content_type()
                if kind == "text/plain" and record["text"] is None:
                    record["text"] = part.get_content()
                elif kind == "text/html" and record["html"] is None:
                    record["html"] = part.get_content()
                elif kind.startswith("image/"):
                    data = part.get_payload(decode=True)
                    image = {"type": kind, "cid": part["content-id"], "bytes": len(data),
                             "disposition": part.get_content_disposition()}
                    image.update(decode_png(data))
                    record["images"].append(image)
            counter.write(record, raw)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def http(out, port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counter = Counter(out)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            counter.write({"path": self.path, "content_type": self.headers.get("content-type"),
                           "body": json.loads(body)})
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    mode, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    {"smtp": smtp, "http": http}[mode](out, port)
