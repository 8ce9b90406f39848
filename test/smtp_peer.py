#!/usr/bin/env python3
"""smtp_peer.py - a small SMTP server for taskflow's delivery tests and demo.

    smtp_peer.py --port 2525 --maildir DIR [--log FILE] [--rules FILE]
                 [--auth USER:PASSWORD]

Listens on 127.0.0.1 only (aiosmtpd).  Every accepted message is written,
byte for byte as received, to the Maildir DIR, and one JSON line is
appended to the log: {"session", "mail_from", "rcpt_to", "message_id",
"size"} ("session" numbers the SMTP connections, so a test can count how
many messages shared one).  It prints "READY <port>" once it listens, and
stops on SIGTERM / SIGINT.

The rules file (JSON, read again for every command, so a test can change
the server's behaviour while it runs; a missing file means no rules):
    {"reject": ["a@example.jp"],   550 5.1.1 to RCPT TO for these
     "defer":  ["b@example.jp"],   450 4.2.1 to RCPT TO for these
     "defer_all": true,            450 4.3.2 to every MAIL FROM
     "delay": 0.2}                 seconds to wait before answering DATA
With --auth the server requires AUTH (PLAIN or LOGIN) with that user and
password (without TLS: it is a loopback test server).
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import logging
import mailbox
import os
import signal
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def load_rules(path):
    """The current rules, or none when the file is missing or half-written."""
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Handler:
    """Writes messages to the Maildir and answers as the rules say."""

    def __init__(self, maildir, log, rules):
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.log = log
        self.rules = rules
        self.sessions = itertools.count(1)

    def session_no(self, session):
        if not hasattr(session, "tf_no"):
            session.tf_no = next(self.sessions)
        return session.tf_no

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.session_no(session)
        if load_rules(self.rules).get("defer_all"):
            return "450 4.3.2 Service not available, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        rules = load_rules(self.rules)
        if address in rules.get("reject", []):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address in rules.get("defer", []):
            return "450 4.2.1 <%s>: Recipient address rejected: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        delay = float(load_rules(self.rules).get("delay", 0))
        if delay > 0:
            await asyncio.sleep(delay)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.maildir.add(content)
        msg = email.message_from_bytes(content, policy=email.policy.compat32)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({
                    "session": self.session_no(session),
                    "mail_from": envelope.mail_from,
                    "rcpt_to": envelope.rcpt_tos,
                    "message_id": msg.get("Message-ID"),
                    "size": len(content),
                    "at": time.time(),
                }) + "\n")
        return "250 2.0.0 OK queued"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--log")
    parser.add_argument("--rules")
    parser.add_argument("--auth", help="USER:PASSWORD required by AUTH")
    args = parser.parse_args()
    # no AUTH-without-TLS warnings: this server is for loopback tests only
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=False)

    handler = Handler(args.maildir, args.log, args.rules)
    controller = Controller(handler, hostname="127.0.0.1", port=args.port,
                            ready_timeout=10, **kwargs)
    controller.start()
    print("READY %d" % args.port, flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    while not stop:
        time.sleep(0.05)
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
