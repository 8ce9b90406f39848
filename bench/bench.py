#!/usr/bin/env python3
"""bench.py — taskflow's benchmarks (issue 7), each against a baseline
measured in the same run.  Started by bench/run.sh, which builds and
installs taskflow, starts a throw-away cluster and smtp-sink, and builds
the libcurl baseline; this script runs the benchmarks, prints every figure
as it goes and writes doc/benchmarks.md.

Every timed piece of work is measured twice: wall-clock time, and the CPU
time of the backend (or worker) doing it, read from /proc.  On a machine
that other work shares, CPU time is the steadier of the two; the targets
are judged on wall-clock time unless said otherwise.
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback

from pgutil import Cluster, PsqlError, proc_cpu, proc_memory, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SQL = os.path.join(HERE, 'sql')

T0 = '2026-04-01 09:00+09'      # the engine's instant in benchmarks 1 and 2
T1 = '2026-03-31 09:00+09'      # a day before: when the fixtures were "made"


def sqlfile(name):
    with open(os.path.join(SQL, name)) as f:
        return f.read()


def fmt(x, digits=0):
    if x is None:
        return 'n/a'
    if isinstance(x, float) and digits:
        return ('{:,.%df}' % digits).format(x)
    return '{:,}'.format(round(x))


def ratio(a, b):
    return a / b if a is not None and b else None


class Bench:
    def __init__(self, args):
        self.args = args
        self.pg = Cluster(args.host, args.bindir)
        self.started = time.time()
        self.results = {}       # name -> dict of figures
        self.notes = {}         # name -> list of lines (method, evidence)
        self.errors = {}        # name -> message
        self.sink = None

    # ---- helpers -----------------------------------------------------------

    def say(self, msg):
        print('[%6.1fs] %s' % (time.time() - self.started, msg), flush=True)

    def left(self):
        return self.args.budget - (time.time() - self.started)

    def note(self, bench, line):
        self.notes.setdefault(bench, []).append(line)

    def clone(self, template, name):
        self.pg.psql('postgres', 'DROP DATABASE IF EXISTS "%s";\n'
                     'CREATE DATABASE "%s" TEMPLATE "%s" STRATEGY FILE_COPY;\n'
                     % (name, name, template), timeout=300)

    def drop(self, name):
        self.pg.psql('postgres', 'DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n' % name,
                     timeout=120, check=False)

    def settle(self, db):
        self.pg.psql(db, 'VACUUM ANALYZE;\nCHECKPOINT;\n', timeout=600)

    def set_conf(self, **settings):
        script = ''.join("ALTER SYSTEM SET taskflow.%s = '%s';\n" % kv for kv in settings.items())
        self.pg.psql('postgres', script + 'SELECT pg_reload_conf();\n')
        time.sleep(0.5)

    def scheduler_pid(self, db):
        v = self.pg.value(db, "SELECT pid FROM taskflow.worker_status WHERE database = '%s'"
                          " AND state = 'running'" % db)
        return int(v) if v else None

    # ---- fixtures ------------------------------------------------------------

    def make_base(self):
        a = self.args
        self.say('fixture: %s members (generate_series)' % fmt(a.members))
        self.drop('bench_base')
        self.pg.psql('postgres', 'CREATE DATABASE bench_base;\n')
        self.pg.psql('bench_base', 'CREATE EXTENSION taskflow;\n')
        t = time.time()
        self.pg.psql('bench_base', sqlfile('members.sql'), {'n': a.members, 't0': T0}, timeout=900)
        self.settle('bench_base')
        self.say('fixture: members loaded in %.1f s' % (time.time() - t))

    # ---- 1. step throughput --------------------------------------------------

    def make_b1_tpl(self):
        """Benchmark 1's fixture (also benchmark 6's), made once a run."""
        if self.pg.value('postgres', "SELECT datname FROM pg_database WHERE datname = 'b1_tpl'"):
            return
        self.say('1. step throughput: fixture (%s members due at step 2)' % fmt(self.args.members))
        self.clone('bench_base', 'b1_tpl')
        self.pg.psql('b1_tpl', sqlfile('b1_fixture.sql'),
                     {'t0': T0, 't1': T1, 'due': self.args.members}, timeout=900)
        self.settle('b1_tpl')

    def bench_step(self):
        a = self.args
        n = a.members
        r = self.results.setdefault('step', {'members': n})
        self.make_b1_tpl()

        # (a) the floor: hand-written set-based SQL, one transaction
        self.clone('b1_tpl', 'b1_floor')
        self.say('1a. floor: hand-written set-based SQL')
        wall, cpu, _ = self.pg.timed('b1_floor', sqlfile('b1_floor.sql'), {'t0': T0},
                                     timeout=max(60, self.left()))
        r.update(floor_wall=wall, floor_cpu=cpu)
        self.say('    %.1f s wall, %.1f s CPU: %s members/s' % (wall, cpu, fmt(n / wall)))

        # the engine: taskflow.run() as of the same instant
        self.clone('b1_tpl', 'b1_engine')
        self.say('1. engine: taskflow.run()')
        wall, cpu, out = self.pg.timed(
            'b1_engine', "SELECT applied || ' ' || errors FROM taskflow.run(:'t0', 'b1');",
            {'t0': T0}, timeout=max(60, self.left()))
        applied, errors = (int(x) for x in out.split())
        r.update(engine_wall=wall, engine_cpu=cpu, engine_applied=applied,
                 engine_errors=errors)
        self.say('    %.1f s wall, %.1f s CPU: %s members/s (applied %s, errors %s)'
                 % (wall, cpu, fmt(n / wall), fmt(applied), errors))

        # (b) the loop: one member at a time, on the first loop_n members
        k = min(a.loop_members, n)
        self.clone('b1_tpl', 'b1_loop')
        self.pg.psql('b1_loop', sqlfile('b1_loop.sql'))
        self.say('1b. per-member PL/pgSQL loop (%s members)' % fmt(k))
        wall, cpu, out = self.pg.timed('b1_loop', "SELECT public.bench_loop(:'t0', :k);",
                                       {'t0': T0, 'k': k}, timeout=max(60, self.left()))
        r.update(loop_members=int(out), loop_wall=wall, loop_cpu=cpu)
        self.say('    %.1f s wall, %.1f s CPU: %s members/s' % (wall, cpu, fmt(k / wall)))

        # the same rows?
        fp = sqlfile('b1_fingerprint.sql')
        r['same_rows_floor'] = (self.pg.value('b1_engine', fp, {'upto': n})
                                == self.pg.value('b1_floor', fp, {'upto': n}))
        r['same_rows_loop'] = (self.pg.value('b1_engine', fp, {'upto': k})
                               == self.pg.value('b1_loop', fp, {'upto': k}))
        self.say('    same rows as the floor: %s; as the loop (first %s): %s'
                 % (r['same_rows_floor'], fmt(k), r['same_rows_loop']))
        for db in ('b1_floor', 'b1_loop', 'b1_engine'):
            self.drop(db)

    # ---- 2. entry evaluation -------------------------------------------------

    def bench_entry(self):
        r = self.results.setdefault('entry', {})
        self.say('2. entry evaluation: fixture')
        self.clone('bench_base', 'b2')
        self.pg.psql('b2', sqlfile('b2_fixture.sql'), {'t0': T0, 't1': T1})
        self.settle('b2')
        crit = self.pg.value('b2', "SELECT normalized FROM taskflow.criteria"
                                   " WHERE name = 'b2:期限7日前'")
        count_sql = ("SELECT count(*) FROM taskflow.member AS member WHERE %s;" % crit)
        r['criteria'] = crit
        setup = "SET taskflow.as_of = '%s';" % T0
        wall, cpu, out = self.pg.timed('b2', "SELECT entered FROM taskflow.run(:'t', 'b2');",
                                       {'t': T0})
        r.update(first_entered=int(out), first_wall=wall, first_cpu=cpu)
        self.say('    first run (enters and applies step 1): %s entered, %.3f s wall'
                 % (fmt(int(out)), wall))
        # as autovacuum would after the first run's writes; then the plain
        # count and the entry check (nobody new matches) take turns
        self.settle('b2')
        counts, runs = [], []
        for k in range(1, 4):
            counts.append(self.pg.timed('b2', count_sql, setup=setup))
            t = "'%s'::timestamptz + interval '%d minutes'" % (T0, 5 * k)
            runs.append(self.pg.timed('b2', "SELECT entered FROM taskflow.run(%s, 'b2');" % t))
        r['matching'] = int(counts[-1][2])
        r['count_wall'] = statistics.median(c[0] for c in counts)
        r['count_cpu'] = statistics.median(c[1] for c in counts)
        r['check_entered'] = [int(x[2]) for x in runs]
        r['check_wall'] = statistics.median(x[0] for x in runs)
        r['check_cpu'] = statistics.median(x[1] for x in runs)
        self.say('    SELECT count(*): %s members match, %.3f s wall, %.3f s CPU'
                 % (fmt(r['matching']), r['count_wall'], r['count_cpu']))
        self.say('    entry check (nobody new): %.3f s wall, %.3f s CPU; ratio %.2f'
                 % (r['check_wall'], r['check_cpu'], r['check_wall'] / r['count_wall']))
        r['plans'] = self.pg.psql('b2', setup + '\nEXPLAIN (ANALYZE, COSTS OFF) ' + count_sql)
        self.drop('b2')

    # ---- 3. idle cost and 4. latency ---------------------------------------

    def bench_idle_latency(self):
        a = self.args
        r3 = self.results.setdefault('idle', {'chains': a.chains})
        r4 = self.results.setdefault('latency', {})
        self.say('3. idle cost: fixture (%s chains, %s members waiting, nothing due)'
                 % (fmt(a.chains), fmt(a.members)))
        self.clone('bench_base', 'b3')
        self.pg.psql('b3', sqlfile('b3_fixture.sql'), {'nchains': a.chains}, timeout=900)
        self.settle('b3')

        # one wake-up from SQL: run(now()), then next_wakeup(now()), each its
        # own transaction, in one session (wall includes psql's round trips)
        n = 300
        sql_figures = {}
        for key, stmt in (('run', 'SELECT count(*) FROM taskflow.run(now());'),
                          ('next_wakeup', 'SELECT taskflow.next_wakeup(now());')):
            body = '\\o /dev/null\n' + (stmt + '\n') * n + '\\o\n'
            wall, cpu, _ = self.pg.timed('b3', body, setup=stmt)
            sql_figures[key] = (wall / n * 1000, cpu / n * 1000)
        r3['sql_run_ms'], r3['sql_run_cpu_ms'] = sql_figures['run']
        r3['sql_next_ms'], r3['sql_next_cpu_ms'] = sql_figures['next_wakeup']
        self.say('    from SQL: run(now()) %.3f ms (%.3f ms CPU), next_wakeup(now()) %.3f ms'
                 ' (%.3f ms CPU), %d times each' % (r3['sql_run_ms'], r3['sql_run_cpu_ms'],
                                                    r3['sql_next_ms'], r3['sql_next_cpu_ms'], n))

        # the scheduler, left alone with nothing due
        self.set_conf(databases='b3', safety_interval='300s')
        if not wait_for(lambda: self.scheduler_pid('b3'), 30):
            raise RuntimeError('the scheduler for b3 did not start')
        wait_for(lambda: self.pg.value('b3', 'SELECT runs FROM taskflow.worker_status'
                                             " WHERE database = 'b3'") not in ('', '0'), 30)
        time.sleep(2)
        q = ("SELECT runs || ' ' || coalesce(last_run_ms, 0) || ' ' || coalesce("
             "extract(epoch FROM next_wakeup_at - now()), -1) FROM taskflow.worker_status"
             " WHERE database = 'b3'")
        runs0, last_ms, next_in = self.pg.value('b3', q).split()
        r3['next_wakeup_in_s'] = float(next_in)
        pid = self.scheduler_pid('b3')

        # the scheduler's own wake-ups: woken n times by a change that makes
        # nothing due (a statement on taskflow.criteria, no rows)
        n = a.wakeups
        cpu0 = proc_cpu(pid)
        out = self.pg.psql('b3', ("UPDATE taskflow.criteria SET name = name WHERE false;\n"
                                  "SELECT pg_sleep(0.02);\n"
                                  "SELECT runs || ' ' || last_run_ms FROM taskflow.worker_status"
                                  " WHERE database = 'b3';\n") * n)
        cpu1 = proc_cpu(pid)
        seen = {}
        for line in out.split('\n'):
            f = line.split()
            if len(f) == 2:
                seen[int(f[0])] = float(f[1])
        runs_now = int(self.pg.value('b3', q).split()[0])
        woken = runs_now - int(runs0)
        ms = sorted(seen.values())
        r3.update(wakeups_measured=woken, wakeup_cpu_ms=(cpu1 - cpu0) / max(woken, 1) * 1000,
                  wakeup_ms=statistics.mean(ms), wakeup_p50_ms=statistics.median(ms),
                  wakeup_max_ms=ms[-1], wakeup_samples=len(ms))
        self.say('    the scheduler, woken %d times: %.3f ms CPU per wake-up; its own time'
                 ' (worker_status.last_run_ms, %d samples) mean %.3f ms, median %.3f ms, max %.3f ms'
                 % (woken, r3['wakeup_cpu_ms'], len(ms), r3['wakeup_ms'], r3['wakeup_p50_ms'],
                    r3['wakeup_max_ms']))

        # then left alone with nothing due
        time.sleep(1)
        runs0 = self.pg.value('b3', q).split()[0]
        cpu0 = proc_cpu(pid)
        self.say('    the scheduler left alone for %d s' % a.idle_seconds)
        time.sleep(a.idle_seconds)
        runs1 = self.pg.value('b3', q).split()[0]
        r3['idle_seconds'] = a.idle_seconds
        r3['idle_wakeups'] = int(runs1) - int(runs0)
        r3['idle_cpu'] = proc_cpu(pid) - cpu0
        r3['wakeups_per_minute'] = r3['idle_wakeups'] * 60.0 / a.idle_seconds
        self.say('    wake-ups while idle: %d in %d s (%.2f per minute), scheduler CPU %.2f s;'
                 ' next wake-up was %.0f s away'
                 % (r3['idle_wakeups'], a.idle_seconds, r3['wakeups_per_minute'],
                    r3['idle_cpu'], r3['next_wakeup_in_s']))

        # 4. latency: single steps made due a few seconds ahead, spaced apart
        k = a.latency_samples
        self.say('4. latency: %d single steps due 2 s from now, %d ms apart' % (k, a.latency_gap_ms))
        self.pg.psql('b3', """
CREATE TABLE public.bench_due (member_id bigint PRIMARY KEY, chain_id integer, due_at timestamptz);
BEGIN;
WITH picked AS (
	SELECT cm.chain_id, cm.member_id,
		   clock_timestamp() + interval '2 seconds'
		   + (row_number() OVER (ORDER BY cm.member_id) - 1) * :gap * interval '1 millisecond' AS due
	  FROM taskflow.chain_member cm WHERE cm.member_id <= :k),
u AS (UPDATE taskflow.chain_member cm SET due_at = p.due FROM picked p
	   WHERE cm.chain_id = p.chain_id AND cm.member_id = p.member_id
	  RETURNING cm.member_id, cm.chain_id, cm.due_at)
INSERT INTO public.bench_due SELECT * FROM u;
COMMIT;
""", {'k': k, 'gap': a.latency_gap_ms})
        span = 2 + k * a.latency_gap_ms / 1000.0
        done_q = ("SELECT count(*) FROM public.bench_due d JOIN taskflow.history h"
                  " ON h.member_id = d.member_id AND h.chain_id = d.chain_id"
                  " AND h.event = 'applied'")
        wait_for(lambda: int(self.pg.value('b3', done_q)) >= k, span + 60, 0.5)
        lat = self.pg.value('b3', """
SELECT string_agg(round(extract(epoch FROM pg_xact_commit_timestamp(h.xmin) - d.due_at) * 1000, 1)::text, ' ')
  FROM public.bench_due d JOIN taskflow.history h
	ON h.member_id = d.member_id AND h.chain_id = d.chain_id AND h.event = 'applied'""")
        samples = sorted(float(x) for x in lat.split()) if lat else []
        r4['samples'] = len(samples)
        r4['expected'] = k
        if samples:
            qs = statistics.quantiles(samples, n=100, method='inclusive')
            r4.update(p50=qs[49], p90=qs[89], p99=qs[98], max=samples[-1], min=samples[0])
            self.say('    %d samples: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms'
                     % (len(samples), r4['p50'], r4['p90'], r4['p99'], r4['max']))
        r4['runs'] = int(self.pg.value('b3', q).split()[0]) - int(runs1)
        r4['chains'] = a.chains
        self.set_conf(databases='')
        self.drop('b3')

    # ---- 5. delivery ---------------------------------------------------------

    def start_sink(self):
        a = self.args
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        env = dict(os.environ, LD_LIBRARY_PATH=a.sink_libdir)
        self.sink = subprocess.Popen([a.sink, '-u', 'postgres', '127.0.0.1:%d' % port, '1024'],
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(a.work, 'smtp-sink.log'), 'w'))
        if not wait_for(lambda: self._port_open(port), 10):
            raise RuntimeError('smtp-sink did not start')
        return port

    @staticmethod
    def _port_open(port):
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close()
            return True
        except OSError:
            return False

    def bench_delivery(self):
        a = self.args
        n = a.messages
        conns = a.delivery_connections * a.delivery_workers
        r = self.results.setdefault('delivery', {'messages': n, 'workers': a.delivery_workers,
                                                 'connections': conns,
                                                 'batch_size': a.delivery_batch})
        port = self.start_sink()
        url = 'smtp://127.0.0.1:%d' % port
        self.say('5. delivery: fixture (%s outbox rows), smtp-sink on %s' % (fmt(n), url))
        self.clone('bench_base', 'b5')
        self.pg.psql('b5', sqlfile('b5_fixture.sql'),
                     {'n': n, 'smtp_url': url, 'connections': a.delivery_connections})
        self.settle('b5')

        # the messages, exactly as the worker builds them, for the baseline
        msgs = os.path.join(a.work, 'messages.copy')
        t = time.time()
        self.pg.psql('b5', "\\copy (SELECT o.recipient, o.sender_address, m.message"
                           " FROM taskflow._mime_messages((SELECT array_agg(x.outbox_id)"
                           " FROM taskflow.outbox x), now()) m JOIN taskflow.outbox o"
                           " USING (outbox_id) ORDER BY o.outbox_id) TO '%s'\n" % msgs,
                     timeout=900)
        r['export_s'] = time.time() - t
        r['message_bytes'] = os.path.getsize(msgs) // n
        self.say('    messages built for the baseline in %.1f s (%s bytes each, escaped)'
                 % (r['export_s'], fmt(r['message_bytes'])))

        def baseline():
            """One run of the bare libcurl program: (sent, failed, seconds, msg/s, CPU s)."""
            t0 = os.times()
            p = subprocess.run([a.curl_baseline, url, str(conns), msgs], capture_output=True,
                               text=True, timeout=max(60, self.left()))
            t1 = os.times()
            f = p.stdout.split()
            if len(f) < 8 or f[0] != 'sent':
                raise RuntimeError('curl_baseline failed: %s' % (p.stderr.strip() or p.stdout))
            return (int(f[1]), int(f[3]), float(f[5]), float(f[7]),
                    t1.children_user - t0.children_user + t1.children_system - t0.children_system)

        # the baseline runs before and after taskflow (the machine's load
        # may change in between); the ratio is to their mean
        b1 = baseline()
        r.update(baseline_sent=b1[0], baseline_failed=b1[1], baseline_s=b1[2],
                 baseline_rate=b1[3])
        self.say('    baseline (bare libcurl, %d connections), before: %s sent in %.2f s = %s msg/s'
                 % (conns, fmt(b1[0]), b1[2], fmt(b1[3])))

        # taskflow: the delivery workers, started with the channel disabled
        self.set_conf(databases='b5', delivery_workers=str(a.delivery_workers),
                      delivery_batch_size=str(a.delivery_batch))
        running = ("SELECT count(*) FROM taskflow.delivery_status WHERE state = 'running'")
        if not wait_for(lambda: int(self.pg.value('b5', running) or 0) >= a.delivery_workers, 30):
            raise RuntimeError('the delivery workers for b5 did not start')
        pids = [int(x) for x in self.pg.value('b5', 'SELECT pid FROM taskflow.delivery_status'
                                                    " WHERE state = 'running'").split()]
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        start = self.pg.value('b5', "SELECT taskflow.configure_channel('email', enabled => true);"
                                    "\nSELECT extract(epoch FROM clock_timestamp());")
        start = float(start.split()[-1])
        # polled from the workers' counters in shared memory: a count over
        # the outbox every half second would take CPU from what is measured
        sent_q = "SELECT coalesce(sum(sent), 0) FROM taskflow.delivery_status"
        wait_for(lambda: int(self.pg.value('b5', sent_q)) >= n, max(60, self.left() - 120), 0.5)
        cpu1 = sum(proc_cpu(pid) for pid in pids)
        v = self.pg.value('b5', """
SELECT count(*) FILTER (WHERE state = 'sent') || ' ' || count(*) FILTER (WHERE state <> 'sent')
	   || ' ' || extract(epoch FROM max(pg_xact_commit_timestamp(xmin)) FILTER (WHERE state = 'sent'))
  FROM taskflow.outbox""").split()
        sent, other, end = int(v[0]), int(v[1]), float(v[2])
        r.update(sent=sent, not_sent=other, seconds=end - start, rate=sent / (end - start),
                 worker_cpu=cpu1 - cpu0)
        self.say('    taskflow: %s sent (%s not) in %.2f s = %s msg/s'
                 % (fmt(sent), fmt(other), end - start, fmt(r['rate'])))
        self.set_conf(databases='', delivery_workers='0')
        b2 = baseline()
        self.say('    baseline, after: %s sent in %.2f s = %s msg/s' % (fmt(b2[0]), b2[2], fmt(b2[3])))
        os.unlink(msgs)
        r.update(baseline_sent=b1[0], baseline_failed=b1[1] + b2[1],
                 baseline_s=(b1[2] + b2[2]) / 2, baseline_rate=(b1[3] + b2[3]) / 2,
                 baseline_runs=[b1[3], b2[3]],
                 baseline_cpu_us=(b1[4] + b2[4]) / max(1, b1[0] + b2[0]) * 1e6,
                 worker_cpu_us=r['worker_cpu'] / max(1, sent) * 1e6)
        self.say('    ratio to the baseline (mean of %s and %s msg/s): %.2f; CPU per message:'
                 ' delivery worker %s us, bare libcurl %s us'
                 % (fmt(b1[3]), fmt(b2[3]), r['rate'] / r['baseline_rate'],
                    fmt(r['worker_cpu_us']), fmt(r['baseline_cpu_us'])))
        self.sink.terminate()
        self.sink.wait()
        self.sink = None
        self.drop('b5')

    # ---- 6. worker memory ----------------------------------------------------

    def sample_run(self, db, target, timeout):
        """Serves db alone, samples the scheduler's memory every 20 ms until
        it has applied target members; returns figures."""
        applied_q = ("SELECT count(*) FROM taskflow.history WHERE event = 'applied'"
                     " AND task_name = 'b1:本会員'")
        self.set_conf(databases=db)
        pid = wait_for(lambda: self.scheduler_pid(db), 30, 0.02)
        if not pid:
            raise RuntimeError('no scheduler for %s' % db)
        t0 = time.time()
        cpu0 = proc_cpu(pid)
        peak = {'RssAnon': 0, 'VmHWM': 0, 'RssShmem': 0}
        samples = 0
        deadline = t0 + timeout
        last_check = 0
        done = False
        while time.time() < deadline:
            try:
                m = proc_memory(pid)
            except OSError:
                break
            samples += 1
            for k in peak:
                peak[k] = max(peak[k], m.get(k, 0))
            now = time.time()
            if now - last_check > 0.5:
                last_check = now
                # a new scheduler's first run applies every due member
                runs = self.pg.value(db, "SELECT runs FROM taskflow.worker_status"
                                         " WHERE database = '%s'" % db)
                if runs and int(runs) >= 1:
                    done = True
                    break
            time.sleep(0.02)
        cpu = proc_cpu(pid) - cpu0
        applied = int(self.pg.value(db, applied_q))
        self.set_conf(databases='')
        return dict(applied=applied, done=done, seconds=time.time() - t0, cpu=cpu,
                    samples=samples, rss_anon_kb=peak['RssAnon'], vmhwm_kb=peak['VmHWM'],
                    rss_shmem_kb=peak['RssShmem'])

    def bench_memory(self):
        a = self.args
        r = self.results.setdefault('memory', {})
        self.set_conf(databases='')
        small = min(a.memory_small, a.members)
        for name, due in (('small', small), ('large', a.members)):
            db = 'b6_' + name
            if name == 'small':
                # benchmark 1's fixture with only the first `due` members in the chain
                self.clone('bench_base', db)
                self.pg.psql(db, sqlfile('b1_fixture.sql'), {'t0': T0, 't1': T1, 'due': due},
                             timeout=900)
            else:
                self.make_b1_tpl()
                self.clone('b1_tpl', db)
            # no entry check (the other members would enter)
            self.pg.psql(db, "UPDATE taskflow.chain SET last_entry_at = 'infinity';\n"
                             "VACUUM ANALYZE;\nCHECKPOINT;\n")
            self.say('6. worker memory: the scheduler applies step 2 to %s due members' % fmt(due))
            f = self.sample_run(db, due, max(60, self.left() - 60))
            f['due'] = due
            r[name] = f
            self.say('    %s applied in %.1f s (%.1f s CPU): %s members/s; peak RssAnon %s kB,'
                     ' VmHWM %s kB (shared buffers touched: %s kB)'
                     % (fmt(f['applied']), f['seconds'], f['cpu'], fmt(f['applied'] / f['seconds']),
                        fmt(f['rss_anon_kb']), fmt(f['vmhwm_kb']), fmt(f['rss_shmem_kb'])))
            self.drop(db)

    # ---- 7. preview -----------------------------------------------------------

    # what a timeline holds, hashed in order: (rows, instants with rows,
    # applied, md5); %s is a query giving at, chain, member_id, task, event
    TIMELINE_FP = """
SELECT count(*) || ' ' || count(DISTINCT at) || ' ' || count(*) FILTER (WHERE event = 'applied')
       || ' ' || md5(string_agg(format('%%s|%%s|%%s|%%s|%%s', at, chain, member_id, task, event),
                                ',' ORDER BY at, chain, member_id, task, event))
  FROM (%s) x;"""
    PREVIEW_ROWS = ("SELECT at, chain, member_id, task, event"
                    " FROM taskflow.preview(:'t0', :'t0'::timestamptz + interval '1 year')")
    HISTORY_ROWS = ("SELECT at, chain_name AS chain, member_id, task_name AS task, event"
                    " FROM taskflow.history"
                    " WHERE at >= :'t0' AND at <= :'t0'::timestamptz + interval '1 year'")

    def preview_limit(self):
        """Seconds the preview (or its baseline) may take: at most
        --preview-limit, and what is left of the budget."""
        return int(max(30, min(self.args.preview_limit, self.left() - 20)))

    def bench_preview(self):
        a = self.args
        r = self.results.setdefault('preview', {'members': a.preview_members})
        self.say('7. preview: fixture (%s members, 5 chains)' % fmt(a.preview_members))
        self.drop('b7_tpl')
        self.pg.psql('postgres', 'CREATE DATABASE b7_tpl;\n')
        self.pg.psql('b7_tpl', 'CREATE EXTENSION taskflow;\n')
        self.pg.psql('b7_tpl', sqlfile('members.sql'), {'n': a.preview_members, 't0': T0})
        self.pg.psql('b7_tpl', sqlfile('b7_fixture.sql'), {'t0': T0, 't1': T1})
        self.settle('b7_tpl')
        # the preview and the real run each start from a copy of it
        self.clone('b7_tpl', 'b7')
        self.clone('b7_tpl', 'b7_run')
        self.pg.psql('b7_run', sqlfile('b7_run.sql'), {'entry_step': '1 day'})
        self.settle('b7_run')

        # the preview, bounded: one that does not finish in time is
        # reported as such
        limit = self.preview_limit()
        r['limit'] = limit
        try:
            wall, cpu, out = self.pg.timed('b7', """
SELECT count(*) || ' ' || count(DISTINCT at) || ' ' || count(*) FILTER (WHERE event = 'applied')
  FROM taskflow.preview(:'t0', :'t0'::timestamptz + interval '1 year');""",
                                           {'t0': T0}, timeout=limit)
        except PsqlError as e:
            if 'timed out' not in str(e):
                raise
            # the engine records a cancel inside a batch as the batch's error
            # and goes on, so the backend is terminated (DROP DATABASE … FORCE)
            r['timed_out'] = True
            self.say('    one year: did not finish in %d s (stopped)' % limit)
            self.drop('b7')
        else:
            rows, instants, applied = (int(x) for x in out.split())
            r.update(wall=wall, cpu=cpu, rows=rows, instants=instants, applied=applied)
            self.say('    one year: %s timeline rows (%s applied) at %s instants in %.2f s'
                     ' (%.2f s CPU)' % (fmt(rows), fmt(applied), fmt(instants), wall, cpu))

        # the baseline: the same year run by the engine, committed after
        # every instant as the scheduler does (bench/sql/b7_run.sql),
        # bounded in the same way
        limit = self.preview_limit()
        r['run_limit'] = limit
        self.say('7. baseline: the same year run by the engine, one transaction an instant')
        try:
            wall, cpu, out = self.pg.timed(
                'b7_run', "CALL public.b7_run(:'t0', :'t0'::timestamptz + interval '1 year');",
                {'t0': T0}, timeout=limit)
        except PsqlError as e:
            if 'timed out' not in str(e):
                raise
            # the CALL goes on without its client: stopped, then how far it
            # got (every instant run was committed)
            self.pg.psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                     " WHERE datname = 'b7_run' AND pid <> pg_backend_pid();\n")
            wait_for(lambda: self.pg.value('postgres', "SELECT count(*) FROM pg_stat_activity"
                                                       " WHERE datname = 'b7_run'") == '0', 30)
            r['run_timed_out'] = True
            r['run_reached'] = self.pg.value('b7_run', 'SELECT max(at) FROM taskflow.history;')
            self.say('    did not finish in %d s (stopped; its history reaches %s)'
                     % (limit, r['run_reached'] or 'nothing'))
        else:
            r.update(run_wall=wall, run_cpu=cpu, run_instants=int(out))
            self.say('    %s instants run in %.2f s (%.2f s CPU)' % (fmt(int(out)), wall, cpu))
            if 'wall' in r:
                self.say('    preview / real run: %.2f (wall), %.2f (CPU)'
                         % (r['wall'] / wall, r['cpu'] / cpu))

        # the same timeline?  The preview's rows, hashed, come from a second,
        # untimed preview (hashing 400,000 rows takes seconds, which the
        # timed one should not include)
        if 'wall' in r and 'run_wall' in r:
            limit = self.preview_limit()
            if limit < r['wall'] * 1.5:
                self.say('    timelines not compared: the time budget was spent')
            else:
                fp_run = self.pg.value('b7_run', self.TIMELINE_FP % self.HISTORY_ROWS,
                                       {'t0': T0})
                self.say('    the real run\'s history (rows, instants, applied, md5): %s' % fp_run)
                try:
                    fp_preview = self.pg.value('b7', self.TIMELINE_FP % self.PREVIEW_ROWS,
                                               {'t0': T0}, timeout=limit)
                except PsqlError as e:
                    if 'timed out' not in str(e):
                        raise
                    self.say('    timelines not compared: the second preview did not finish'
                             ' in %d s' % limit)
                else:
                    r.update(fp_run=fp_run, fp_preview=fp_preview,
                             same_timeline=fp_run == fp_preview)
                    self.say('    the preview\'s timeline (rows, instants, applied, md5): %s'
                             % fp_preview)
                    self.say('    same timeline: %s' % r['same_timeline'])
        if 'wall' in r:
            self.bench_preview_few(r)
        for db in ('b7', 'b7_run', 'b7_tpl'):
            self.drop(db)

    # three members of the fixture, and the hypothetical member previewed alone
    FEW = '{5,77,4242}'
    HYPOTHETICAL = ('{"name": "見込み客", "email": "prospect@example.jp", "status": "trial",'
                    ' "expires_at": "2026-12-01 00:00+09"}')

    def bench_preview_few(self, r):
        """A year previewed for three members, and for a hypothetical one:
        the simulation narrowed to them (src/preview_scope.c); the three
        members' rows checked against the real run's history."""
        # the whole previews before this one left their 600,000 rolled-back
        # rows in b7; the first reader after them pays for clearing them
        # (hint bits, pruning: 3 s became 10-12 s), which autovacuum does
        # in a database in use.  Vacuumed first, untimed, as benchmark 1 is.
        self.pg.psql('b7', 'VACUUM;\n', timeout=600)
        limit = self.preview_limit()
        self.say('7. preview of a few members: three of the fixture, then a hypothetical one')
        wall, cpu, out = self.pg.timed('b7', """
SELECT count(*) FROM taskflow.preview(:'t0', :'t0'::timestamptz + interval '1 year',
                                      member_ids => :'few'::bigint[]);""",
                                       {'t0': T0, 'few': self.FEW}, timeout=limit)
        r.update(few_wall=wall, few_cpu=cpu, few_rows=int(out))
        self.say('    three members: %s rows in %.2f s (%.2f s CPU)' % (out, wall, cpu))
        wall, cpu, out = self.pg.timed('b7', """
SELECT count(*) FROM taskflow.preview(:'t0', :'t0'::timestamptz + interval '1 year',
                                      hypothetical => :'h'::jsonb);""",
                                       {'t0': T0, 'h': self.HYPOTHETICAL}, timeout=limit)
        r.update(one_wall=wall, one_cpu=cpu, one_rows=int(out))
        self.say('    a hypothetical member: %s rows in %.2f s (%.2f s CPU)' % (out, wall, cpu))
        if 'run_wall' in r:
            few_preview = self.pg.value('b7', self.TIMELINE_FP % (
                "SELECT at, chain, member_id, task, event FROM taskflow.preview(:'t0',"
                " :'t0'::timestamptz + interval '1 year', member_ids => :'few'::bigint[])"),
                {'t0': T0, 'few': self.FEW}, timeout=limit)
            few_run = self.pg.value('b7_run', self.TIMELINE_FP % (
                self.HISTORY_ROWS + " AND member_id = ANY (:'few'::bigint[])"),
                {'t0': T0, 'few': self.FEW})
            r['few_same'] = few_preview == few_run
            self.say('    the three members\' rows as in the real run: %s' % r['few_same'])

    # ---- the run ---------------------------------------------------------------

    def run(self):
        a = self.args
        # the preview last, bounded by what is left of the budget (at most
        # --preview-limit seconds, and as much again for its baseline): it
        # is the one that may not finish
        steps = [('base', self.make_base), ('entry', self.bench_entry),
                 ('idle', self.bench_idle_latency), ('delivery', self.bench_delivery),
                 ('step', self.bench_step), ('memory', self.bench_memory),
                 ('preview', self.bench_preview)]
        self.load = [os.getloadavg()]
        for name, fn in steps:
            if a.only and name not in a.only and name != 'base':
                continue
            if a.only and name == 'base' and not ({'entry', 'step', 'memory', 'idle', 'delivery'}
                                                  & set(a.only)):
                continue
            if self.left() < 30:
                self.errors[name] = 'skipped: the time budget was spent'
                self.say('%s: skipped (time budget spent)' % name)
                continue
            try:
                fn()
            except Exception as e:
                self.errors[name] = str(e)
                self.say('%s FAILED: %s' % (name, e))
                traceback.print_exc()
                try:
                    self.set_conf(databases='', delivery_workers='0')
                except Exception:
                    pass
            self.load.append(os.getloadavg())
        if self.sink:
            self.sink.terminate()
        self.elapsed = time.time() - self.started
        report = Report(self).render()
        if a.out:
            with open(a.out, 'w') as f:
                f.write(report)
            self.say('wrote %s' % a.out)
        print(report)
        return 0 if not self.errors else 1


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--host', required=True, help='socket directory of the cluster')
    p.add_argument('--bindir', required=True)
    p.add_argument('--work', required=True, help='a directory for temporary files')
    p.add_argument('--out', help='the markdown report to write')
    p.add_argument('--command', default='bench/run.sh')
    p.add_argument('--settings', default='', help='postgresql.conf lines (for the report)')
    p.add_argument('--members', type=int, default=1000000)
    p.add_argument('--loop-members', type=int, default=20000)
    p.add_argument('--chains', type=int, default=1000)
    p.add_argument('--idle-seconds', type=int, default=40)
    p.add_argument('--wakeups', type=int, default=100)
    p.add_argument('--latency-samples', type=int, default=200)
    p.add_argument('--latency-gap-ms', type=int, default=50)
    p.add_argument('--messages', type=int, default=100000)
    # two delivery workers of two connections each, batches of 500: the
    # configuration doc/delivery.md recommends for throughput; the baseline
    # gets the same four connections (bench/analysis.md, 5)
    p.add_argument('--delivery-workers', type=int, default=2)
    p.add_argument('--delivery-connections', type=int, default=2,
                   help='SMTP connections per delivery worker')
    p.add_argument('--delivery-batch', type=int, default=500)
    p.add_argument('--memory-small', type=int, default=10000)
    p.add_argument('--preview-members', type=int, default=10000)
    p.add_argument('--preview-limit', type=int, default=300,
                   help='seconds the preview, and then its baseline (the same year'
                        ' run by the engine), may each take before it is stopped')
    p.add_argument('--sink', help='smtp-sink binary')
    p.add_argument('--sink-libdir', default='')
    p.add_argument('--curl-baseline')
    p.add_argument('--budget', type=float, default=1140, help='seconds for the whole run')
    p.add_argument('--only', nargs='*', help='run only these benchmarks')
    args = p.parse_args()
    from report import Report
    globals()['Report'] = Report
    sys.exit(Bench(args).run())


if __name__ == '__main__':
    main()
