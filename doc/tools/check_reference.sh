#!/usr/bin/env bash
# check_reference.sh — lists whatever the installed taskflow has that
# doc/reference.md does not document, and what it documents that no longer
# exists.  Exit status 0 when nothing is missing.
#
#   doc/tools/check_reference.sh                 # a throw-away instance
#   doc/tools/check_reference.sh -d 'dbname=app' # an existing database with taskflow
#
# Without -d it starts a temporary PostgreSQL instance (as postgres when run
# as root, as scripts/demo.sh does) with taskflow preloaded, runs CREATE
# EXTENSION taskflow there, and removes it afterwards; the extension must be
# installed (make install).  It reads the catalog, not the sources, so what
# it checks is exactly what CREATE EXTENSION creates:
#
#   function   every public function of schema taskflow has a heading
#              "taskflow.name()", and each of its argument names appears in
#              that section (so an added argument is noticed);
#   internal   every function whose name starts with _ is in the list under
#              "Internal functions" as `_name(`;
#   table/view every table, view and composite type has a heading
#   /type      "taskflow.name", and each of its columns appears in that section;
#   setting    every taskflow.* setting has a heading "taskflow.name";
#   role       taskflow_app, taskflow_operator and taskflow_relay have a heading;
#   stale      a heading "taskflow.x()" or "taskflow.x" naming nothing that
#              exists.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REF="$top/doc/reference.md"
CONNINFO=""

while [ $# -gt 0 ]; do
	case "$1" in
		-d) CONNINFO=$2; shift 2 ;;
		-r) REF=$2; shift 2 ;;
		-h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
		*) echo "usage: $0 [-d conninfo] [-r reference.md]" >&2; exit 2 ;;
	esac
done
[ -f "$REF" ] || { echo "no such file: $REF" >&2; exit 2; }

if [ -z "${PG_CONFIG:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
	PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
fi
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)

# one line per object: kind <TAB> name <TAB> space-separated words that must
# appear in its section (argument or column names)
CATALOG_SQL=$(cat <<'SQL'
SELECT 'function', p.proname,
       coalesce((SELECT string_agg(a, ' ') FROM unnest(p.proargnames) WITH ORDINALITY x(a, i)
                  WHERE coalesce(p.proargmodes[i], 'i') IN ('i', 'b', 'v') AND a <> ''), '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'taskflow' AND p.proname !~ '^_'
UNION ALL
SELECT 'internal', p.proname, ''
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'taskflow' AND p.proname ~ '^_'
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'type' END, c.relname,
       (SELECT string_agg(a.attname, ' ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'taskflow' AND c.relkind IN ('r', 'v', 'c')
UNION ALL
SELECT 'setting', substr(name, 10), '' FROM pg_settings WHERE name LIKE 'taskflow.%'
UNION ALL
SELECT 'role', rolname, '' FROM pg_roles
 WHERE rolname IN ('taskflow_app', 'taskflow_operator', 'taskflow_relay')
ORDER BY 1, 2
SQL
)

catalog=$(mktemp)
cleanup() {
	local rc=$?
	rm -f "$catalog"
	if [ -n "${TMP_DIR:-}" ]; then
		if [ -f "$TMP_DIR/data/postmaster.pid" ]; then
			"${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$TMP_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
		fi
		rm -rf "$TMP_DIR"
	fi
	exit $rc
}
trap cleanup EXIT

if [ -n "$CONNINFO" ]; then
	"$BINDIR/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -d "$CONNINFO" -c "$CATALOG_SQL" >"$catalog"
else
	AS_OWNER=()
	if [ "$(id -u)" -eq 0 ]; then
		AS_OWNER=(runuser -u postgres --)
	fi
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskflow-refcheck.XXXXXX")
	chmod 755 "$TMP_DIR"
	[ ${#AS_OWNER[@]} -gt 0 ] && chown postgres: "$TMP_DIR"
	"${AS_OWNER[@]}" "$BINDIR/initdb" -D "$TMP_DIR/data" -E UTF8 --no-locale -A trust \
		-U postgres >"$TMP_DIR/initdb.log" 2>&1 || { cat "$TMP_DIR/initdb.log" >&2; exit 2; }
	cat >>"$TMP_DIR/data/postgresql.conf" <<-EOF
	listen_addresses = ''
	unix_socket_directories = '$TMP_DIR'
	shared_preload_libraries = 'taskflow'
	taskflow.databases = ''
	EOF
	"${AS_OWNER[@]}" "$BINDIR/pg_ctl" -D "$TMP_DIR/data" -l "$TMP_DIR/server.log" -w \
		start >/dev/null || { tail -n 20 "$TMP_DIR/server.log" >&2; exit 2; }
	"${AS_OWNER[@]}" "$BINDIR/psql" -X -q -h "$TMP_DIR" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -c 'CREATE EXTENSION taskflow' >/dev/null
	"${AS_OWNER[@]}" "$BINDIR/psql" -X -q -At -F $'\t' -h "$TMP_DIR" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -c "$CATALOG_SQL" >"$catalog"
fi

awk -F '\t' -v ref="$REF" '
function esc(s) { gsub(/[][\\.^$*+?(){}|]/, "\\\\&", s); return s }
function mentions(text, word) {
	return text ~ ("(^|[^A-Za-z0-9_])" esc(word) "([^A-Za-z0-9_]|$)")
}
BEGIN {
	# sections of reference.md: the text under each heading, keyed by every
	# object the heading names
	while ((getline line < ref) > 0) {
		if (line ~ /^```/) fenced = !fenced
		if (!fenced && line ~ /^#+ /) {
			nkeys = 0
			h = line
			in_internal = (line ~ /^#+ Internal functions/)
			while (match(h, /taskflow[._][a-z0-9_]+\(?/)) {
				tok = substr(h, RSTART, RLENGTH)
				h = substr(h, RSTART + RLENGTH)
				if (tok ~ /^taskflow_/) key = "role:" tok
				else if (tok ~ /\($/) key = "fn:" substr(tok, 10, length(tok) - 10)
				else key = "obj:" substr(tok, 10)
				keys[++nkeys] = key
				headed[key] = 1
			}
			continue
		}
		for (k = 1; k <= nkeys; k++) section[keys[k]] = section[keys[k]] "\n" line
		if (in_internal) internal_text = internal_text "\n" line
	}
	missing = 0
}
{
	kind = $1; name = $2; nwords = split($3, words, " ")
	if (kind == "function") {
		key = "fn:" name; label = "function taskflow." name "()"
	} else if (kind == "internal") {
		exists["fn:" name] = 1
		if (index(internal_text, "`" name "(") == 0) {
			print "missing internal function " name "() (under Internal functions)"; missing++
		}
		next
	} else if (kind == "role") {
		key = "role:" name; label = "role " name
	} else {
		key = "obj:" name
		label = (kind == "setting" ? "setting taskflow." : kind " taskflow.") name
	}
	exists[key] = 1
	counted[kind]++
	if (!(key in headed)) {
		print "missing " label; missing++
		next
	}
	for (i = 1; i <= nwords; i++)
		if (!mentions(section[key], words[i])) {
			print label ": " (kind == "function" ? "argument" : "column") " \"" words[i] "\" is not mentioned"
			missing++
		}
}
END {
	for (key in headed)
		if (!(key in exists)) {
			split(key, p, ":")
			print "documented but not in the catalog: " (p[1] == "fn" ? "taskflow." p[2] "()" : p[1] == "role" ? p[2] : "taskflow." p[2])
			missing++
		}
	if (missing > 0) {
		print missing " problem(s) in " ref
		exit 1
	}
	printf "%s documents all %d functions, %d tables, %d views, %d types, %d settings and %d roles\n",
		ref, counted["function"], counted["table"], counted["view"], counted["type"],
		counted["setting"], counted["role"]
}' "$catalog"
