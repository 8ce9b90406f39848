#!/usr/bin/env bash
# test.sh — build taskflow, install it and run every test suite: pg_regress
# (sql/), isolation (test/specs/) and TAP (test/t/).  This is the README's
# test command and what CI runs (.ci/run).
#
#   scripts/test.sh [--werror] [regress] [isolation] [tap]
#
# With no suite named, all three run.  Warnings are errors when CI=true,
# TASKFLOW_WERROR=1 or --werror.  The last line printed is always
# "N passed, N failed" (tests counted per file: one sql/*.sql, one spec, one
# test/t/*.pl each); a build failure, a suite that cannot start or a timeout
# counts as one failure.  Exit status 0 only when nothing failed.
#
# The source tree is copied to a fresh temporary directory owned by the
# user running the tests ("postgres" when run as root, because PostgreSQL
# refuses to run as root and may not be able to read a checkout under
# /root), built and installed from there; every server is a temporary
# instance inside that directory.  No system cluster is used.
set -uo pipefail
exec 2>&1

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 2

# ---- options -------------------------------------------------------------

werror=0
[ "${CI:-}" = true ] && werror=1
[ "${TASKFLOW_WERROR:-0}" = 1 ] && werror=1
suites=()
for arg in "$@"; do
	case "$arg" in
		--werror) werror=1 ;;
		regress|isolation|tap) suites+=("$arg") ;;
		-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "test.sh: unknown argument \"$arg\" (try --help)"; exit 2 ;;
	esac
done
[ ${#suites[@]} -eq 0 ] && suites=(regress isolation tap)

WERROR_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers'
# Time limits (seconds): per step, and for the whole run (T_TOTAL), so that
# even a hung suite ends the run in under 20 minutes.
T_BOOTSTRAP=${T_BOOTSTRAP:-600}
T_BUILD=${T_BUILD:-300}
T_SUITE=${T_SUITE:-600}
T_TOTAL=${T_TOTAL:-1140}
started=$SECONDS

passed=0
failed=0
failures=()		# one line per failure, repeated in the summary

# ---- helpers -------------------------------------------------------------

section() { printf '\n==== %s ====\n' "$*"; }

# limit SECONDS: the step's own limit, or less when the run's budget is
# nearly spent (never below 1).
limit() {
	local left=$((T_TOTAL - (SECONDS - started)))
	[ "$left" -lt "$1" ] && set -- "$left"
	[ "$1" -lt 1 ] && set -- 1
	echo "$1"
}

# fail "what": counts one failure that is not a test result.
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

# Command prefixes: AS_TESTER runs a command as the user that runs the
# servers (postgres when we are root), AS_ROOT with the rights to install.
AS_TESTER=()
AS_ROOT=()
if [ "$(id -u)" -eq 0 ]; then
	AS_TESTER=(runuser -u postgres --)
elif [ ! -w "$(pg_config --pkglibdir 2>/dev/null || echo /)" ] &&
	command -v sudo >/dev/null 2>&1; then
	AS_ROOT=(sudo)
fi

# show_file FILE LINES [head|tail]: prints part of a file under a heading.
show_file() {
	local file=$1 lines=$2 how=${3:-tail} total
	[ -s "$file" ] || return 0
	total=$(wc -l <"$file")
	if [ "$total" -le "$lines" ]; then
		printf -- '---- %s (%d lines) ----\n' "${file#"$work"/}" "$total"
		cat "$file"
	else
		printf -- '---- %s (%s %d of %d lines) ----\n' "${file#"$work"/}" \
			"$( [ "$how" = head ] && echo first || echo last)" "$lines" "$total"
		"$how" -n "$lines" "$file"
	fi
}

# show_server_log FILE: lines that tell of a crash, the last errors, then
# the end of the log.
show_server_log() {
	local file=$1 crash='PANIC|TRAP:|terminated by signal|was terminated|FATAL'
	[ -s "$file" ] || return 0
	if grep -qE "$crash" "$file"; then
		printf -- '---- %s: crashes and fatal errors ----\n' "${file#"$work"/}"
		grep -E "$crash" "$file" | head -n 20
	fi
	if grep -qE ' (ERROR|WARNING): ' "$file"; then
		printf -- '---- %s: last errors ----\n' "${file#"$work"/}"
		grep -E -A1 ' (ERROR|WARNING): ' "$file" | tail -n 16
	fi
	show_file "$file" 10 tail
}

# stop_servers: stops any server a killed or crashed suite left running in
# the work directory (by the pid in its own postmaster.pid, nothing else).
stop_servers() {
	local pidfile dir
	[ -n "${work:-}" ] && [ -d "$work" ] || return 0
	while IFS= read -r pidfile; do
		dir=$(dirname "$pidfile")
		"${AS_TESTER[@]}" pg_ctl -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	done < <(find "$work" -name postmaster.pid 2>/dev/null)
}

cleanup() {
	stop_servers
	if [ -n "${work:-}" ] && [ -d "$work" ]; then
		if [ "$failed" -eq 0 ] || [ "${CI:-}" = true ]; then
			rm -rf "$work"
		fi
	fi
}

# finish: stops what is left, prints the totals (always the last line) and
# exits with the right status.
finish() {
	trap - EXIT
	cleanup
	section "Summary"
	if [ ${#failures[@]} -gt 0 ]; then
		printf 'failed: %s\n' "${failures[@]}"
		if [ -n "${work:-}" ] && [ -d "$work" ]; then
			echo "(the work tree with all results and logs is kept in $work)"
		fi
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
trap 'fail "test.sh interrupted"; finish' INT TERM
trap 'fail "test.sh stopped early (exit $?)"; finish' EXIT

# ---- 1. packages ---------------------------------------------------------

section "Packages"
if ! timeout "$(limit "$T_BOOTSTRAP")" "$top/scripts/bootstrap.sh"; then
	fail "bootstrap (missing packages could not be installed)"
	finish
fi
# PostgreSQL 15's own pg_config, even if another major version is installed
if [ -z "${PG_CONFIG:-}" ] && [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
	export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
fi
export PG_CONFIG=${PG_CONFIG:-pg_config}
export PATH="$("$PG_CONFIG" --bindir):$PATH"

# ---- 2. build and install from a fresh copy ------------------------------

section "Build$( [ $werror = 1 ] && echo ' (warnings are errors)')"
work=$(mktemp -d "${TMPDIR:-/tmp}/taskflow-test.XXXXXX") || { fail "mktemp"; finish; }
chmod 755 "$work"
src="$work/src"
mkdir "$src"
# the working tree as it is (uncommitted changes included), without build
# products and results of earlier runs
tar -C "$top" --exclude=./.git --exclude='*.o' --exclude='*.so' \
	--exclude='*.bc' --exclude='./tmp_check*' --exclude=./results \
	--exclude=./output_iso --exclude=./log --exclude='./regression.*' \
	-cf - . | tar -C "$src" -xf - || { fail "copying the source tree"; finish; }
rm -f "$src"/taskflow--*.sql

make_args=(-C "$src" -j"$(nproc 2>/dev/null || echo 2)")
[ $werror = 1 ] && make_args+=("PG_CFLAGS=$WERROR_CFLAGS")
if ! timeout "$(limit "$T_BUILD")" make "${make_args[@]}" >"$work/build.log" 2>&1; then
	show_file "$work/build.log" 60 tail
	fail "build"
	finish
fi
grep -E 'warning:' "$work/build.log" | head -n 30
echo "build: ok ($(grep -c 'warning:' "$work/build.log") warnings)"

if ! timeout "$(limit "$T_BUILD")" "${AS_ROOT[@]}" make -C "$src" install >"$work/install.log" 2>&1; then
	show_file "$work/install.log" 30 tail
	fail "make install"
	finish
fi
echo "install: ok ($("$PG_CONFIG" --pkglibdir)/taskflow.so)"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work"

# ---- 3. the suites -------------------------------------------------------

# parse_regress LOG: counts pg_regress / isolation result lines, e.g.
#   "test members                      ... ok           45 ms"
#   "     tasks                        ... FAILED       12 ms" (parallel group)
#   "test foo                          ... failed (ignored) 3 ms"
# A test line with no result (pg_regress stopped during it) is a failure.
# Sets n_ok, n_bad and bad_names.
parse_regress() {
	local line re='^(test +| +)([^ ]+) +\.\.\. +(.*)$'
	n_ok=0 n_bad=0 bad_names=()
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		case "${BASH_REMATCH[3]}" in
			ok*|"failed (ignored)"*) n_ok=$((n_ok + 1)) ;;
			*) n_bad=$((n_bad + 1)); bad_names+=("${BASH_REMATCH[2]}") ;;
		esac
	done <"$1"
}

# parse_prove LOG: counts TAP files from prove's summary: "Files=N, ..." and
# one "test/t/x.pl (Wstat: ... Tests: N Failed: N)" line per failed file.
# Sets n_ok, n_bad, bad_names, and n_files (-1: prove did not finish).
parse_prove() {
	local line re='^(test/t/[^ ]+\.pl) +\(Wstat'
	n_ok=0 n_bad=0 bad_names=() n_files=-1
	while IFS= read -r line; do
		if [[ $line =~ ^Files=([0-9]+), ]]; then
			n_files=${BASH_REMATCH[1]}
		elif [[ $line =~ $re ]]; then
			n_bad=$((n_bad + 1)); bad_names+=("${BASH_REMATCH[1]}")
		fi
	done <"$1"
	[ "$n_files" -ge 0 ] && n_ok=$((n_files - n_bad))
}

# list_tap_results: one line per TAP file, from prove's summary (its
# progress lines are interleaved with the tests' own output, so they cannot
# be read back reliably): FAILED for the files it lists as failed, ok for
# the others once prove has finished, not run when it did not finish.
list_tap_results() {
	local f b x status
	for f in "$src"/test/t/*.pl; do
		b=test/t/$(basename "$f")
		status=ok
		[ "$n_files" -lt 0 ] && status="not run (prove did not finish)"
		for x in "${bad_names[@]}"; do [ "$x" = "$b" ] && status=FAILED; done
		printf '%-40s %s\n' "$b" "$status"
	done
}

# run_suite NAME: runs one suite with make installcheck, the others
# switched off, and adds its results to the totals.
run_suite() {
	local name=$1 rc vars
	local log="$work/$name.log"
	case "$name" in
		regress) vars=(ISOLATION= TAP_TESTS=) ;;
		isolation) vars=(REGRESS= TAP_TESTS=) ;;
		tap) vars=(REGRESS= ISOLATION=) ;;
	esac
	section "Suite: $name"
	case "$name" in
		regress) [ -n "$(ls "$src"/sql/*.sql 2>/dev/null)" ] ;;
		isolation) [ -n "$(ls "$src"/test/specs/*.spec 2>/dev/null)" ] ;;
		tap) [ -n "$(ls "$src"/test/t/*.pl 2>/dev/null)" ] ;;
	esac || { echo "no $name tests"; return 0; }

	local t
	t=$(limit "$T_SUITE")
	(cd "$src" && timeout -k 30 "$t" \
		"${AS_TESTER[@]}" make -k installcheck "${vars[@]}") >"$log" 2>&1
	rc=$?
	if [ "$name" = tap ]; then
		parse_prove "$log"
		list_tap_results
		grep -E '^Files=|^Result:' "$log"
	else
		grep -E '^(test +| +)[^ ]+ +\.\.\. |^ *(All [0-9]+ tests|[0-9]+ of [0-9]+ tests)' "$log"
		parse_regress "$log"
	fi
	passed=$((passed + n_ok))
	failed=$((failed + n_bad))
	local b
	for b in "${bad_names[@]}"; do failures+=("$name: $b"); done

	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		stop_servers
		show_file "$log" 20 tail
		fail "$name: timed out after ${t}s"
	elif [ $rc -ne 0 ] && [ "$n_bad" -eq 0 ]; then
		show_file "$log" 20 tail
		fail "$name: the suite stopped with an error (make exit $rc)"
	fi
	[ $rc -ne 0 ] && show_failures "$name"
	return 0
}

# show_new_outputs EXPECTED_DIR RESULTS_DIR: for a failed test that has no
# expected output yet, what it printed (to check, then copy as expected).
show_new_outputs() {
	local b
	for b in "${bad_names[@]}"; do
		if [ ! -f "$1/$b.out" ] && [ -f "$2/$b.out" ]; then
			echo "${1#"$src"/}/$b.out is missing; check this output, then copy it there:"
			show_file "$2/$b.out" 40 head
		fi
	done
}

# show_failures NAME: the diffs and server logs of a failed suite, bounded.
show_failures() {
	local f b
	case "$1" in
		regress)
			show_new_outputs "$src/expected" "$src/results"
			show_file "$src/regression.diffs" 150 head
			show_server_log "$src/log/postmaster.log" ;;
		isolation)
			show_new_outputs "$src/test/expected" "$src/output_iso/results"
			show_file "$src/output_iso/regression.diffs" 150 head
			show_server_log "$src/output_iso/log/postmaster.log" ;;
		tap)
			# prove's own report of the failed assertions
			f=$(sed -n '/^#   Failed test/,/^[^#]/p' "$work/tap.log" | head -n 60)
			[ -n "$f" ] && printf -- '---- failed assertions ----\n%s\n' "$f"
			for b in "${bad_names[@]}"; do
				b=$(basename "$b" .pl)
				show_file "$src/tmp_check/log/regress_log_$b" 40 tail
				for f in "$src"/tmp_check/log/"${b}"_*.log; do show_server_log "$f"; done
			done ;;
	esac
}

for s in "${suites[@]}"; do
	run_suite "$s"
done
finish
