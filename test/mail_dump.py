#!/usr/bin/env python3
"""mail_dump.py - what a reader sees in the mails of a Maildir, as JSON.

    mail_dump.py MAILDIR

Prints a JSON list, one object per message (ordered by Message-ID, then
by arrival), decoded with Python's email parser (policy=default, as a
mail client would): "subject", "from_name", "from_address", "to",
"reply_to", "message_id", "date", "list_id", "list_unsubscribe",
"list_unsubscribe_post", "mime_version", "content_type", "parts" (a list
of {"type", "charset", "transfer_encoding", "text"} for each leaf part in
order), "max_line" (the longest raw line, without CRLF), "bare_lf" (true
when a line ends in LF without CR), "ascii" (the raw message is pure
ASCII).
"""

import email
import email.policy
import email.utils
import json
import mailbox
import sys


def describe(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    name, address = email.utils.parseaddr(str(msg.get("From", "")))
    lines = raw.split(b"\r\n")
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transfer_encoding": part.get("Content-Transfer-Encoding"),
            "text": part.get_content(),
        })
    return {
        "subject": str(msg.get("Subject", "")),
        "from_name": name,
        "from_address": address,
        "to": str(msg.get("To", "")),
        "reply_to": msg.get("Reply-To") and str(msg.get("Reply-To")),
        "message_id": str(msg.get("Message-ID", "")),
        "date": str(msg.get("Date", "")),
        "list_id": msg.get("List-Id") and str(msg.get("List-Id")),
        "list_unsubscribe": msg.get("List-Unsubscribe") and str(msg.get("List-Unsubscribe")),
        "list_unsubscribe_post": msg.get("List-Unsubscribe-Post") and str(msg.get("List-Unsubscribe-Post")),
        "mime_version": str(msg.get("MIME-Version", "")),
        "content_type": msg.get_content_type(),
        "parts": parts,
        "max_line": max(len(l) for l in lines),
        "bare_lf": any(b"\n" in l for l in lines),
        "ascii": all(b < 128 for b in raw),
    }


def main():
    box = mailbox.Maildir(sys.argv[1], create=False)
    mails = []
    for key in box.keys():
        with box.get_file(key) as f:
            mails.append(describe(f.read()))
    mails.sort(key=lambda m: m["message_id"])
    json.dump(mails, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
