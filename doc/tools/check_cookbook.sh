#!/usr/bin/env bash
# check_cookbook.sh — runs every recipe of doc/cookbook.md and fails if any
# statement errors.
#
#   doc/tools/check_cookbook.sh            # every recipe
#   doc/tools/check_cookbook.sh -v 7       # recipe 7 only, printing its output
#
# It starts a throw-away PostgreSQL instance (as postgres when run as root)
# with taskflow preloaded and its workers off (taskflow.databases = ''), so
# only the recipes' explicit taskflow.run() calls move time; the extension
# must be installed (make install).  The ```sql blocks before the first
# numbered recipe ("## 1. ...") are the preamble.  Each recipe runs twice:
# alone in a fresh database (preamble + recipe), and all of them one after
# the other in one database, as a reader pasting the whole page would.  A
# block right after a line "<!-- norun -->" is not run.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOC="$top/doc/cookbook.md"
ONLY=""
VERBOSE=0
while [ $# -gt 0 ]; do
	case "$1" in
		-v) VERBOSE=1; ONLY=$2; shift 2 ;;
		-r) ONLY=$2; shift 2 ;;
		-f) DOC=$2; shift 2 ;;
		-h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
		*) echo "usage: $0 [-r N | -v N] [-f cookbook.md]" >&2; exit 2 ;;
	esac
done

if [ -z "${PG_CONFIG:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
	PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
fi
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)

AS_OWNER=()
[ "$(id -u)" -eq 0 ] && AS_OWNER=(runuser -u postgres --)
TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskflow-cookbook.XXXXXX")
chmod 755 "$TMP_DIR"
cleanup() {
	local rc=$?
	if [ -f "$TMP_DIR/data/postmaster.pid" ]; then
		"${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$TMP_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP_DIR"
	exit $rc
}
trap cleanup EXIT

# split the page: recipes/00.sql is the preamble, recipes/NN.sql recipe NN
mkdir "$TMP_DIR/recipes"
awk -v dir="$TMP_DIR/recipes" '
	BEGIN { n = 0; file = sprintf("%s/%02d.sql", dir, n); printf "" > file }
	/^## [0-9]+\. / { n = $2 + 0; file = sprintf("%s/%02d.sql", dir, n)
					  printf "-- %s\n", substr($0, 4) > file; next }
	/^<!-- norun -->/ { skip = 1; next }
	/^```sql/ && !inblock { inblock = 1; run = !skip; skip = 0; next }
	/^```/ && inblock { inblock = 0; if (run) print "" >> file; next }
	inblock && run { print >> file; next }
	{ if (!inblock && $0 !~ /^[[:space:]]*$/) skip = 0 }
' "$DOC"
chmod 644 "$TMP_DIR"/recipes/*.sql
[ ${#AS_OWNER[@]} -gt 0 ] && chown -R postgres: "$TMP_DIR"

"${AS_OWNER[@]}" "$BINDIR/initdb" -D "$TMP_DIR/data" -E UTF8 --no-locale -A trust \
	-U postgres >"$TMP_DIR/initdb.log" 2>&1 || { cat "$TMP_DIR/initdb.log" >&2; exit 2; }
cat >>"$TMP_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$TMP_DIR'
shared_preload_libraries = 'taskflow'
taskflow.databases = ''
timezone = 'Asia/Tokyo'
EOF
"${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$TMP_DIR/data" -l "$TMP_DIR/server.log" -w \
	start >/dev/null || { tail -n 20 "$TMP_DIR/server.log" >&2; exit 2; }

PSQL=("${AS_OWNER[@]}" "$BINDIR/psql" -X -h "$TMP_DIR" -U postgres -v ON_ERROR_STOP=1 -P pager=off)

# run_files DB FILE... : runs the files in one session; prints the error
run_files() {
	local db=$1; shift
	local out="$TMP_DIR/out.$db"
	if cat "$@" | "${PSQL[@]}" -d "$db" -f - >"$out" 2>&1; then
		[ $VERBOSE -eq 1 ] && cat "$out"
		return 0
	fi
	[ $VERBOSE -eq 1 ] && cat "$out" || grep -E -B2 -A4 'ERROR|FATAL' "$out" | head -n 30
	return 1
}

failed=0
passed=0
recipes=$(cd "$TMP_DIR/recipes" && ls [0-9][0-9].sql | grep -v '^00' || true)
for f in $recipes; do
	n=$((10#${f%.sql}))
	[ -n "$ONLY" ] && [ "$n" -ne "$ONLY" ] && continue
	db="recipe$n"
	"${PSQL[@]}" -d postgres -q -c "CREATE DATABASE $db" >/dev/null
	title=$(head -n 1 "$TMP_DIR/recipes/$f" | sed 's/^-- //')
	if run_files "$db" "$TMP_DIR/recipes/00.sql" "$TMP_DIR/recipes/$f"; then
		echo "ok      $title"; passed=$((passed + 1))
	else
		echo "FAILED  $title"; failed=$((failed + 1))
	fi
done

if [ -z "$ONLY" ]; then
	"${PSQL[@]}" -d postgres -q -c "CREATE DATABASE cookbook_all" >/dev/null
	if run_files cookbook_all "$TMP_DIR/recipes/00.sql" $(for f in $recipes; do echo "$TMP_DIR/recipes/$f"; done); then
		echo "ok      all recipes one after the other in one database"; passed=$((passed + 1))
	else
		echo "FAILED  all recipes one after the other in one database"; failed=$((failed + 1))
	fi
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
