#!/usr/bin/env bash
# dev_check.sh — for developers: build the working tree into a private copy
# of the PostgreSQL 15 installation and run chosen tests there, so that
# several people (or helpers) on one machine never overwrite each other's
# installed taskflow.  Run as root.
#
#   scripts/dev_check.sh NAME [regress TEST...] [isolation SPEC...] [tap T/NNN_x.pl...]
#
# NAME picks the private directory /tmp/taskflow-dev.NAME (kept between
# runs; the installation copy is made once).  With no suite named it only
# builds and installs.  The tree is copied to NAME/src each run (owned by
# postgres, which runs the servers).  Exit status is make's.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
name=$1; shift
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=/tmp/taskflow-dev.$name
PG_CONFIG_SYS=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$PG_CONFIG_SYS" --bindir)          # /usr/lib/postgresql/15/bin
pgshare=$("$PG_CONFIG_SYS" --sharedir)      # /usr/share/postgresql/15
pginc=$("$PG_CONFIG_SYS" --includedir-server)
inst=$dir/inst
if [ ! -x "$inst$pgbin/pg_config" ]; then
	mkdir -p "$inst$(dirname "$(dirname "$pgbin")")" "$inst$(dirname "$pgshare")" \
		"$inst$(dirname "$pginc")"
	cp -a "$(dirname "$pgbin")" "$inst$(dirname "$(dirname "$pgbin")")/"
	cp -a "$pgshare" "$inst$(dirname "$pgshare")/"
	ln -sfn "$pginc" "$inst$pginc"
	# the client include directory (libpq-fe.h) is found through pg_config too
	pgcinc=$("$PG_CONFIG_SYS" --includedir)
	[ -e "$inst$pgcinc" ] || { mkdir -p "$(dirname "$inst$pgcinc")"; ln -sfn "$pgcinc" "$inst$pgcinc"; }
fi
export PG_CONFIG=$inst$pgbin/pg_config
rm -rf "$dir/src"; mkdir -p "$dir/src"
tar -C "$top" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude='./tmp_check*' --exclude=./results --exclude=./output_iso --exclude=./log \
	-cf - . | tar -C "$dir/src" -xf -
rm -f "$dir/src"/taskflow--*.sql
make -s -C "$dir/src" -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
make -s -C "$dir/src" install PG_CONFIG="$PG_CONFIG"
chown -R postgres: "$dir"
regress=() iso=() tap=() cur=
for a in "$@"; do
	case "$a" in regress|isolation|tap) cur=$a ;;
	*) case "$cur" in regress) regress+=("$a") ;; isolation) iso+=("$a") ;;
		tap) tap+=("$a") ;; *) echo "dev_check.sh: name a suite before $a" >&2; exit 2 ;; esac ;;
	esac
done
[ ${#regress[@]} -eq 0 ] && [ ${#iso[@]} -eq 0 ] && [ ${#tap[@]} -eq 0 ] && exit 0
cd "$dir/src"
if [ ${#tap[@]} -gt 0 ]; then
	tapargs=("PROVE_TESTS=${tap[*]}")
else
	tapargs=(TAP_TESTS= PROVE_TESTS=)
fi
runuser -u postgres -- make installcheck PG_CONFIG="$PG_CONFIG" \
	REGRESS="${regress[*]}" ISOLATION="${iso[*]}" "${tapargs[@]}"
