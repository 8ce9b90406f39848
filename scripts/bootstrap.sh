#!/usr/bin/env bash
# bootstrap.sh — install the Debian 12 packages taskflow needs to build, test
# and demo, and nothing else.
#
# Idempotent: packages already installed are left alone, and when nothing is
# missing it neither runs apt-get nor needs root.  Debian's own cluster
# ("main") is never touched: the tests and the demo start their own
# throw-away instances.
set -euo pipefail

PACKAGES=(
	build-essential          # cc, make
	pkg-config               # finds libcurl's flags
	postgresql-15            # server binaries for temp instances
	postgresql-server-dev-15 # PGXS, pg_regress, isolation tester, TAP modules
	libcurl4-openssl-dev     # SMTP / HTTP delivery
	libpq-dev                # libpq (loopback connections)
	libipc-run-perl          # TAP tests (PostgreSQL::Test::Cluster)
	python3-aiosmtpd         # local SMTP server for delivery tests and demo
	ca-certificates          # TLS for libcurl
)

# Package names only (the comments above are for people).
missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "bootstrap: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "bootstrap: missing packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
	echo "bootstrap: not root, using sudo"
else
	echo "bootstrap: ERROR: installing packages needs root; run as root (or install sudo): ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bootstrap: installed ${missing[*]}"
