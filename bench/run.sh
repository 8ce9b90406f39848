#!/usr/bin/env bash
# run.sh — taskflow's benchmarks (issue 7), each against a baseline measured
# in the same run; writes doc/benchmarks.md.  Run as root, like
# scripts/test.sh:
#
#   bench/run.sh [bench.py options, e.g. --members 200000 or --only step entry]
#
# It builds taskflow from a copy of the working tree and installs it into a
# private copy of the PostgreSQL 15 installation (so that another `make
# install` on the machine cannot change what is measured), gets postfix's
# smtp-sink (apt-get download postfix; dpkg -x into the work directory) and
# builds bench/curl_baseline.c, starts a throw-away cluster as postgres
# with taskflow preloaded and tuned for this machine (2 cores, 24 GiB), and
# runs bench/bench.py, which prints every figure as it goes and writes
# doc/benchmarks.md.  Everything lives in one temporary directory, removed
# at the end; no system cluster is touched.  The whole run is bounded:
# bench.py keeps to --budget seconds (1140 by default), and this script
# stops it after 20 minutes in any case.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: run as root (it installs packages, and runs the cluster as postgres)" >&2
	exit 2
fi
AS_PG=(runuser -u postgres --)
started=$SECONDS

say() { printf '\n== %s\n' "$*"; }

# ---- packages and tools --------------------------------------------------

say "Packages"
"$top/scripts/bootstrap.sh"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
command -v python3 >/dev/null || { echo "run.sh: python3 is needed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/taskflow-bench.XXXXXX")
chmod 755 "$work"
cleanup() {
	local rc=$?
	if [ -f "$work/data/postmaster.pid" ]; then
		"${AS_PG[@]}" "$work/bin/pg_ctl" -D "$work/data" -m immediate -w -t 60 stop \
			>/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -f "$work/server.log" ]; then
		echo "---- last lines of the server log ----"
		tail -n 30 "$work/server.log"
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "smtp-sink (postfix package, unpacked)"
(cd "$work" && apt-get download -q postfix >/dev/null 2>&1) ||
	{ apt-get update -q >/dev/null && (cd "$work" && apt-get download -q postfix); }
dpkg -x "$work"/postfix_*.deb "$work/postfix"
SINK="$work/postfix/usr/sbin/smtp-sink"
SINK_LIBDIR="$work/postfix/usr/lib/postfix"
[ -x "$SINK" ] || { echo "run.sh: no smtp-sink in the postfix package" >&2; exit 2; }
echo "$SINK"

say "Build"
mkdir "$work/src"
tar -C "$top" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude='./tmp_check*' --exclude=./results --exclude=./output_iso --exclude=./log \
	-cf - . | tar -C "$work/src" -xf -
rm -f "$work/src"/taskflow--*.sql
make -s -C "$work/src" -j"$(nproc)" >"$work/build.log" 2>&1 ||
	{ tail -n 40 "$work/build.log"; exit 1; }
# a private copy of the installation: bin, lib, share, relocatable
pgbin=$("$PG_CONFIG" --bindir)
pglib=$("$PG_CONFIG" --pkglibdir)
pgshare=$("$PG_CONFIG" --sharedir)
case "$pglib" in "$(dirname "$pgbin")"/*) ;; *)
	echo "run.sh: expected $pglib under $(dirname "$pgbin") (Debian's layout)" >&2; exit 2 ;;
esac
mkdir -p "$work/inst$(dirname "$(dirname "$pgbin")")" "$work/inst$(dirname "$pgshare")"
cp -a "$(dirname "$pgbin")" "$work/inst$(dirname "$(dirname "$pgbin")")/"
cp -a "$pgshare" "$work/inst$(dirname "$pgshare")/"
make -s -C "$work/src" install DESTDIR="$work/inst" >"$work/install.log" 2>&1 ||
	{ tail -n 20 "$work/install.log"; exit 1; }
ln -s "$work/inst$pgbin" "$work/bin"
echo "taskflow installed into $work/inst"
gcc -O2 -Wall -o "$work/curl_baseline" "$top/bench/curl_baseline.c" \
	$(pkg-config --cflags --libs libcurl)
echo "bench/curl_baseline.c built"

# ---- the cluster ---------------------------------------------------------

say "A throw-away cluster"
chown -R postgres: "$work"
"${AS_PG[@]}" "$work/bin/initdb" -D "$work/data" -E UTF8 --no-locale -A trust -U postgres \
	>"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; exit 1; }
# 2 cores, 24 GiB: a quarter of the memory for shared buffers, large WAL so
# that no checkpoint falls inside a measurement, JIT off (a compile per
# batch statement costs more than it saves), commit timestamps for the
# latency benchmark.  The workers serve no database until a benchmark asks.
SETTINGS="shared_buffers = 6GB
effective_cache_size = 16GB
work_mem = 64MB
maintenance_work_mem = 1GB
wal_buffers = 64MB
max_wal_size = 32GB
min_wal_size = 2GB
checkpoint_timeout = 30min
random_page_cost = 1.1
jit = off
track_commit_timestamp = on
max_worker_processes = 32
shared_preload_libraries = 'taskflow'
taskflow.databases = ''
taskflow.delivery_workers = 0"
cat >>"$work/data/postgresql.conf" <<EOF

# bench/run.sh
listen_addresses = ''
unix_socket_directories = '$work'
timezone = 'Asia/Tokyo'
log_timezone = 'Asia/Tokyo'
$SETTINGS
EOF
"${AS_PG[@]}" "$work/bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 120 start \
	>/dev/null || { tail -n 30 "$work/server.log"; exit 1; }
echo "cluster in $work (socket), server log $work/server.log"

# ---- the benchmarks ------------------------------------------------------

say "Benchmarks"
budget=$((1140 - (SECONDS - started)))
set +e
timeout -k 30 $((budget + 60)) python3 "$top/bench/bench.py" --host "$work" \
	--bindir "$work/bin" --work "$work" --out "$top/doc/benchmarks.md" \
	--sink "$SINK" --sink-libdir "$SINK_LIBDIR" --curl-baseline "$work/curl_baseline" \
	--command "bench/run.sh${*:+ $*}" --settings "$SETTINGS" --budget "$budget" "$@"
rc=$?
set -e
say "Done in $((SECONDS - started)) s (bench.py exit $rc)"
exit $rc
