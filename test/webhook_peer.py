#!/usr/bin/env python3
"""webhook_peer.py - a small HTTP server for taskflow's webhook tests.

    webhook_peer.py --port 8080 --secret-file FILE --log FILE [--fail-first N]
                    [--status CODE]

Listens on 127.0.0.1 only.  For every POST it checks the signature header
X-Taskflow-Signature: sha256=<hex HMAC-SHA256 of the body with the secret
in FILE (trailing newline ignored)> and appends one JSON line to the log:
{"path", "key" (Idempotency-Key), "content_type", "recipient"
(X-Taskflow-Recipient), "signature_ok", "body"
(the JSON body, parsed), "status" (what it answered), "attempt" (the how
many-th request with this key)}.  It answers 401 to a bad or missing
signature; with --fail-first N, 500 to the first N requests of each key;
with --status CODE, CODE to every request; otherwise 200.  Prints "READY
<port>" once it listens; stops on SIGTERM / SIGINT.
"""

import argparse
import collections
import hashlib
import hmac
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--status", type=int, default=0)
    args = parser.parse_args()

    with open(args.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    attempts = collections.Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            key = self.headers.get("Idempotency-Key")
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            given = self.headers.get("X-Taskflow-Signature", "")
            ok = hmac.compare_digest(expected, given)
            with lock:
                attempts[key] += 1
                attempt = attempts[key]
            if not ok:
                status = 401
            elif args.status:
                status = args.status
            elif attempt <= args.fail_first:
                status = 500
            else:
                status = 200
            try:
                parsed = json.loads(body.decode("utf-8"))
            except ValueError:
                parsed = None
            with lock, open(args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "path": self.path, "key": key,
                    "content_type": self.headers.get("Content-Type"),
                    "recipient": self.headers.get("X-Taskflow-Recipient"),
                    "signature_ok": ok, "body": parsed,
                    "raw": body.decode("utf-8", "replace"),
                    "status": status, "attempt": attempt,
                }, ensure_ascii=False) + "\n")
            answer = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    signal.signal(signal.SIGINT, lambda *a: threading.Thread(target=server.shutdown).start())
    print("READY %d" % args.port, flush=True)
    server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
