#!/usr/bin/python3
"""A webhook receiver for WebhookTests: stdlib only, written from docs/webhooks.md and not from the
Swift code, so a passing test shows that an ordinary receiver can parse and verify what Waybill sends.

    webhook_receiver.py --secret S --out DIR [--statuses 503,503,200] [--retry-after 120]
                        [--location URL] [--stall SECONDS] [--tls-cert C --tls-key K]

Listens on 127.0.0.1, port 0, and prints `READY <port>`. For request n (1, 2, ...) it answers the
n-th of --statuses (the last one once they run out; 200 by default), with Location: --location on
a 3xx and Retry-After: --retry-after on a 429 or 503. It records the request to DIR/request-<n>.json
(and the document's bytes to DIR/request-<n>.document) before answering, so a client that has its
answer finds the record; with --stall it then waits that long before answering.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse

TOLERANCE = 300


def verify(header, body, secret, now):
    """The verifier of docs/webhooks.md."""
    items = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    signatures = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    if not items.get("t", "").isdigit() or abs(now - int(items["t"])) > TOLERANCE:
        return False
    expected = hmac.new(secret, items["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def parse_parameters(text):
    """Content-Type / Content-Disposition parameters: token or quoted-string values (with \\ escapes)."""
    value, _, rest = text.partition(";")
    params = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            i += 1
            out = []
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < len(rest):
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            params[name] = "".join(out)
        else:
            end = rest.find(";", i)
            end = len(rest) if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
    return value.strip().lower(), params


def parse_multipart(body, boundary):
    """RFC 2046 §5.1.1 for a body with exactly the framing Waybill promises: no preamble or epilogue."""
    delimiter = b"--" + boundary.encode()
    if not body.startswith(delimiter + b"\r\n"):
        raise ValueError("body does not start with the boundary")
    close = b"\r\n" + delimiter + b"--\r\n"
    if not body.endswith(close):
        raise ValueError("body does not end with the close delimiter")
    inner = body[len(delimiter) + 2 : len(body) - len(close)]
    parts = []
    for raw in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, content = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without a blank line after its headers")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        server = self.server
        with server.lock:
            server.count += 1
            number = server.count
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        record = {
            "number": number,
            "method": self.command,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "content_length": length,
            "body_length": len(body),
        }
        header = self.headers.get("X-Waybill-Signature", "")
        record["signature_valid"] = verify(header, body, server.secret, time.time())
        record["signature_valid_with_wrong_secret"] = verify(header, body, server.secret + b"x", time.time())
        try:
            media_type, params = parse_parameters(self.headers.get("Content-Type", ""))
            record["media_type"] = media_type
            parts = parse_multipart(body, params["boundary"])
            record["part_names"] = []
            for headers, content in parts:
                _, disposition = parse_parameters(headers.get("content-disposition", ""))
                name = disposition.get("name")
                record["part_names"].append(name)
                if name == "metadata":
                    record["metadata_content_type"] = headers.get("content-type")
                    record["metadata"] = json.loads(content.decode("utf-8"))
                elif name == "document":
                    record["document_content_type"] = headers.get("content-type")
                    record["filename"] = disposition.get("filename")
                    star = disposition.get("filename*")
                    if star is not None:
                        charset, _, encoded = star.split("'", 2)
                        record["filename_star_charset"] = charset
                        record["filename_star"] = urllib.parse.unquote(encoded, encoding="utf-8", errors="strict")
                    record["document_sha256"] = hashlib.sha256(content).hexdigest()
                    record["document_size"] = len(content)
                    with open(os.path.join(server.out, "request-%d.document" % number), "wb") as f:
                        f.write(content)
        except Exception as error:  # recorded for the test to show, answered like any other request
            record["parse_error"] = repr(error)

        statuses = server.statuses
        status = statuses[min(number, len(statuses)) - 1]
        record["answered"] = status
        path = os.path.join(server.out, "request-%d.json" % number)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f, indent=1, ensure_ascii=False)
        os.rename(path + ".tmp", path)

        if server.stall:
            time.sleep(server.stall)
        reply = ("request %d answered %d\n" % (number, status)).encode()
        try:
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", server.location)
            if status in (429, 503) and server.retry_after:
                self.send_header("Retry-After", server.retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the stall test)

    # Any method is recorded, so a followed redirect (which may turn the POST into a GET) shows.
    do_GET = do_PUT = do_POST


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--statuses", default="200")
    parser.add_argument("--retry-after")
    parser.add_argument("--location", default="http://127.0.0.1:9/elsewhere")
    parser.add_argument("--stall", type=float, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    # A child of a test process may inherit a mask that blocks SIGTERM (Foundation's Process does not
    # reset it); without this, terminate() would leave the receiver running.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.count = 0
    server.secret = args.secret.encode()
    server.out = args.out
    server.statuses = [int(s) for s in args.statuses.split(",")]
    server.retry_after = args.retry_after
    server.location = args.location
    server.stall = args.stall
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
