#!/usr/bin/env bash
# demo.sh — the README's demo: build and install taskflow, start a
# throw-away PostgreSQL 15 instance with taskflow preloaded, load the sample
# members of scripts/demo.sql and show what taskflow does with them.
#
#   scripts/demo.sh
#
# The instance lives in a temporary directory, listens only on a Unix
# socket there, and is stopped and removed when the demo ends, even on
# failure.  Debian's own cluster is never touched.  A local SMTP server
# (aiosmtpd on 127.0.0.1) receives the mail the demo's chain sends; the
# mails are printed at the end.  Each demo step is a function below, listed
# in STEPS; the SQL steps are sections of demo.sql.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_SQL="$top/scripts/demo.sql"

# Commands run as the user that owns the instance (postgres when we are
# root: PostgreSQL refuses to run as root) and with the rights to install.
AS_OWNER=()
AS_ROOT=()
if [ "$(id -u)" -eq 0 ]; then
	AS_OWNER=(runuser -u postgres --)
elif command -v sudo >/dev/null 2>&1; then
	AS_ROOT=(sudo)
fi

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

# ---- steps ---------------------------------------------------------------

# Packages: whatever is missing (see bootstrap.sh).
step_bootstrap() {
	"$top/scripts/bootstrap.sh"
	if [ -z "${PG_CONFIG:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	fi
	export PG_CONFIG=${PG_CONFIG:-pg_config}
	export PATH="$("$PG_CONFIG" --bindir):$PATH"
}

# Build in the checkout, install into PostgreSQL 15.
step_build() {
	say "Building and installing taskflow"
	make -s -C "$top" -j"$(nproc 2>/dev/null || echo 2)"
	if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
		make -s -C "$top" install
	else
		"${AS_ROOT[@]}" make -s -C "$top" install
	fi
}

# A fresh instance in a temporary directory: UTF-8, Tokyo time, taskflow
# preloaded, reachable only through the socket in that directory.
step_cluster() {
	say "Starting a throw-away PostgreSQL instance"
	DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskflow-demo.XXXXXX")
	chmod 755 "$DEMO_DIR"
	[ ${#AS_OWNER[@]} -gt 0 ] && chown postgres: "$DEMO_DIR"
	PGDATA="$DEMO_DIR/data"
	"${AS_OWNER[@]}" initdb -D "$PGDATA" -E UTF8 --no-locale -A trust \
		-U postgres >"$DEMO_DIR/initdb.log" 2>&1 ||
		{ cat "$DEMO_DIR/initdb.log"; return 1; }
	cat >>"$PGDATA/postgresql.conf" <<-EOF

	# taskflow demo
	listen_addresses = ''
	unix_socket_directories = '$DEMO_DIR'
	shared_preload_libraries = 'taskflow'
	timezone = 'Asia/Tokyo'
	log_timezone = 'Asia/Tokyo'
	EOF
	"${AS_OWNER[@]}" pg_ctl -D "$PGDATA" -l "$DEMO_DIR/server.log" -w -t 60 \
		start >/dev/null ||
		{ tail -n 20 "$DEMO_DIR/server.log"; return 1; }
	export PGHOST="$DEMO_DIR" PGUSER=postgres PGDATABASE=taskflow_demo
	unset PGPORT PGSERVICE
	"${AS_OWNER[@]}" createdb taskflow_demo
	echo "instance in $DEMO_DIR, database taskflow_demo"
}

# CREATE EXTENSION, then every section of demo.sql (the file is read by
# this script, so the instance's owner need not be able to read the
# checkout).
step_sql() {
	say "CREATE EXTENSION taskflow; then scripts/demo.sql"
	"${AS_OWNER[@]}" psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION taskflow'
	"${AS_OWNER[@]}" psql -X -q -v ON_ERROR_STOP=1 -P pager=off \
		-v smtp_url="smtp://127.0.0.1:$SMTP_PORT" -f - <"$DEMO_SQL"
}

# A local SMTP server for the demo's mail: aiosmtpd (test/smtp_peer.py) on
# 127.0.0.1, writing every message it accepts to a Maildir in the demo's
# directory.  demo.sql points the 'email' channel at it.
step_smtp() {
	say "Starting a local SMTP server (aiosmtpd, 127.0.0.1) that writes a Maildir"
	SMTP_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	MAILDIR="$DEMO_DIR/maildir"
	"$PYTHON" "$top/test/smtp_peer.py" --port "$SMTP_PORT" --maildir "$MAILDIR" \
		--log "$DEMO_DIR/smtp.log" >"$DEMO_DIR/smtp.out" 2>&1 &
	SMTP_PID=$!
	for _ in $(seq 100); do
		grep -q '^READY' "$DEMO_DIR/smtp.out" 2>/dev/null && break
		kill -0 "$SMTP_PID" 2>/dev/null || { cat "$DEMO_DIR/smtp.out"; return 1; }
		sleep 0.1
	done
	grep -q '^READY' "$DEMO_DIR/smtp.out" || { cat "$DEMO_DIR/smtp.out"; return 1; }
	echo "smtp://127.0.0.1:$SMTP_PORT, Maildir $MAILDIR"
}

# The mails the SMTP server received, as a mail client shows them: decoded
# with Python's email parser.
step_mail() {
	say "The mails that arrived at the local SMTP server (decoded with Python's email parser)"
	"$PYTHON" - "$MAILDIR" <<'PY'
import email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
msgs = sorted((box.get_file(k).read() for k in box.keys()))
print("%d mail(s) in the Maildir" % len(msgs))
for raw in msgs:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    print("-" * 60)
    for h in ("Subject", "From", "To", "Message-ID"):
        print("%-11s %s" % (h + ":", msg[h]))
    body = msg.get_body(preferencelist=("plain",))
    print()
    print(body.get_content().replace("\r\n", "\n").rstrip())
print("-" * 60)
PY
}

# Stops and removes the instance (runs on exit, also after a failure).
cleanup() {
	local rc=$?
	if [ -n "${SMTP_PID:-}" ]; then
		kill "$SMTP_PID" 2>/dev/null || true
		wait "$SMTP_PID" 2>/dev/null || true
	fi
	if [ -n "${DEMO_DIR:-}" ] && [ -d "$DEMO_DIR" ]; then
		if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
			"${AS_OWNER[@]}" pg_ctl -D "$DEMO_DIR/data" -m fast -w -t 60 \
				stop >/dev/null 2>&1 || true
		fi
		if [ $rc -ne 0 ] && [ -f "$DEMO_DIR/server.log" ]; then
			echo "---- last lines of the server log ----"
			tail -n 15 "$DEMO_DIR/server.log"
		fi
		rm -rf "$DEMO_DIR"
	fi
	if [ $rc -eq 0 ]; then
		say "Demo finished; the instance was stopped and removed"
	else
		say "Demo FAILED (exit $rc); the instance was stopped and removed"
	fi
	exit $rc
}

# ---- main ----------------------------------------------------------------

# the Python that has aiosmtpd (Debian's python3-aiosmtpd)
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3

STEPS=(step_bootstrap step_build step_cluster step_smtp step_sql step_mail)
trap cleanup EXIT
for step in "${STEPS[@]}"; do
	"$step"
done
