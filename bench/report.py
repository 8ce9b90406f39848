"""report.py — doc/benchmarks.md from a run of bench.py: the machine, the
command, every figure with its baseline and target, then bench/analysis.md
(the hand-written explanation of the figures, the profiles and the
optimisations) as it stands in the tree.
"""

import datetime
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def fmt(x, digits=0):
    if x is None:
        return 'n/a'
    if digits:
        return ('{:,.%df}' % digits).format(x)
    return '{:,}'.format(round(x))


def verdict(ok):
    if ok is None:
        return 'not measured'
    return '**met**' if ok else '**missed**'


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:
        return '(%s: %s)' % (' '.join(cmd), e)


class Report:
    def __init__(self, bench):
        self.b = bench
        self.r = bench.results
        self.lines = []

    def w(self, s=''):
        self.lines.append(s)

    def render(self):
        b = self.b
        a = b.args
        self.w('# Benchmarks')
        self.w()
        self.w('Written by `%s` (bench/bench.py) on %s; the whole run took %.0f s.'
               % (a.command, datetime.datetime.now().strftime('%Y-%m-%d %H:%M %Z').strip(),
                  b.elapsed))
        self.w('Every figure below comes from that one run: each benchmark and its baseline')
        self.w('ran minutes apart on the same cluster. Re-run it to update this file.')
        self.w()
        self.machine()
        self.summary()
        self.step()
        self.entry()
        self.idle()
        self.latency()
        self.delivery()
        self.memory()
        self.preview()
        if b.errors:
            self.w('## Errors in this run')
            self.w()
            for k, v in b.errors.items():
                self.w('- %s: `%s`' % (k, v.replace('\n', ' ')[:500]))
            self.w()
        path = os.path.join(HERE, 'analysis.md')
        if os.path.exists(path):
            with open(path) as f:
                self.w(f.read().rstrip())
            self.w()
        return '\n'.join(self.lines) + '\n'

    # ---- sections --------------------------------------------------------

    def machine(self):
        b = self.b
        self.w('## Machine and settings')
        self.w()
        self.w('```')
        self.w('$ lscpu | head -20')
        self.w('\n'.join(run(['lscpu']).splitlines()[:20]))
        self.w('$ free -g')
        self.w(run(['free', '-g']))
        self.w('$ uname -srm')
        self.w(run(['uname', '-srm']))
        self.w('$ postgres --version')
        self.w(run([os.path.join(b.args.bindir, 'postgres'), '--version']))
        self.w('```')
        self.w()
        loads = ', '.join('%.1f' % l[0] for l in b.load)
        self.w('Load average (1 min) before and after each benchmark: %s. The machine is' % loads)
        self.w('shared: other work running at the same time slows every figure (the')
        self.w('baselines as much as taskflow), which is why CPU time of the process')
        self.w('doing the work is given next to wall-clock time.')
        self.w()
        if b.args.settings:
            self.w('The throw-away cluster (initdb, then these lines in postgresql.conf):')
            self.w()
            self.w('```')
            self.w(b.args.settings.strip())
            self.w('```')
            self.w()

    def summary(self):
        r = self.r
        self.w('## Summary')
        self.w()
        self.w('| # | benchmark | taskflow | baseline | ratio | target | |')
        self.w('| --- | --- | --- | --- | --- | --- | --- |')
        s = r.get('step')
        if s and 'engine_wall' in s:
            n = s['members']
            eng = n / s['engine_wall']
            floor = n / s['floor_wall'] if 'floor_wall' in s else None
            loop = s['loop_members'] / s['loop_wall'] if 'loop_wall' in s else None
            self.w('| 1 | step throughput, %s due members | %s members/s | floor (set-based SQL) %s/s |'
                   ' %s× the floor\'s time | ≤ 1.3× | %s |'
                   % (fmt(n), fmt(eng), fmt(floor), fmt(s['engine_wall'] / s['floor_wall'], 2)
                      if floor else 'n/a', verdict(s['engine_wall'] / s['floor_wall'] <= 1.3
                                                     if floor else None)))
            self.w('| 1 | | | per-member PL/pgSQL loop %s/s | %s× faster | ≥ 5× | %s |'
                   % (fmt(loop), fmt(eng / loop, 1) if loop else 'n/a',
                      verdict(eng / loop >= 5 if loop else None)))
            self.w('| 1 | | | | | ≥ 50,000 members/s | %s |' % verdict(eng >= 50000))
        e = r.get('entry')
        if e and 'check_wall' in e:
            self.w('| 2 | entry check, %s%% of %s match | %s s | `SELECT count(*)` %s s | %s× |'
                   ' ≤ 1.5× | %s |'
                   % (fmt(100.0 * e['matching'] / self.b.args.members, 1),
                      fmt(self.b.args.members), fmt(e['check_wall'], 3), fmt(e['count_wall'], 3),
                      fmt(e['check_wall'] / e['count_wall'], 2),
                      verdict(e['check_wall'] / e['count_wall'] <= 1.5)))
        i = r.get('idle')
        if i and 'wakeup_ms' in i:
            self.w('| 3 | one scheduler wake-up, %s chains, nothing due | %s ms (%s ms CPU) | | |'
                   ' ≤ 1 ms | %s |'
                   % (fmt(i['chains']), fmt(i['wakeup_ms'], 3), fmt(i['wakeup_cpu_ms'], 3),
                      verdict(i['wakeup_ms'] <= 1)))
            if 'idle_wakeups' in i:
                allowed = -(-i['idle_seconds'] // 300)
                self.w('| 3 | wake-ups when nothing is due | %s in %d s | safety timer: 1 per 300 s |'
                       ' | none beyond it | %s |'
                       % (i['idle_wakeups'], i['idle_seconds'],
                          verdict(i['idle_wakeups'] <= allowed)))
        l = r.get('latency')
        if l and 'p99' in l:
            self.w('| 4 | due-to-done, %d single steps | p50 %s ms, p99 %s ms | | | p99 ≤ 1 s | %s |'
                   % (l['samples'], fmt(l['p50'], 1), fmt(l['p99'], 1),
                      verdict(l['p99'] <= 1000 and l['samples'] == l['expected'])))
        d = r.get('delivery')
        if d and 'rate' in d:
            self.w('| 5 | delivery, %s messages to smtp-sink | %s msg/s | bare libcurl %s msg/s |'
                   ' %s× | ≥ 5,000 msg/s and ≥ 0.5× | %s |'
                   % (fmt(d['messages']), fmt(d['rate']), fmt(d['baseline_rate']),
                      fmt(d['rate'] / d['baseline_rate'], 2),
                      verdict(d['rate'] >= 5000 and d['rate'] / d['baseline_rate'] >= 0.5)))
        m = r.get('memory')
        if m and 'small' in m and 'large' in m:
            q = m['large']['rss_anon_kb'] / m['small']['rss_anon_kb']
            self.w('| 6 | scheduler memory, %s vs %s due | %s kB | %s kB | %s× | ≤ 1.1× | %s |'
                   % (fmt(m['large']['due']), fmt(m['small']['due']),
                      fmt(m['large']['rss_anon_kb']), fmt(m['small']['rss_anon_kb']),
                      fmt(q, 2), verdict(q <= 1.1)))
        p = r.get('preview')
        if p and ('wall' in p or p.get('timed_out')):
            self.preview_rows(p)
        self.w()

    def step(self):
        s = self.r.get('step')
        if not s:
            return
        a = self.b.args
        n = s['members']
        self.w('## 1. Engine step throughput')
        self.w()
        self.w('%s members (`generate_series`, bench/sql/members.sql) wait at step 2 of a' % fmt(n))
        self.w('three-step chain, all due (bench/sql/b1_fixture.sql). Step 2 sets `status`,')
        self.w('adds a tag (with its timeline row), writes its history row and renders an')
        self.w('outbox row from a template; the members then wait for step 3. Each contender')
        self.w('starts from its own copy of the same database (`CREATE DATABASE … TEMPLATE`).')
        self.w()
        self.w('| contender | members | wall | backend CPU | members/s (wall) | members/s (CPU) |')
        self.w('| --- | --- | --- | --- | --- | --- |')
        if 'engine_wall' in s:
            self.w('| taskflow: `taskflow.run(as_of, \'b1\')` | %s | %s s | %s s | %s | %s |'
                   % (fmt(n), fmt(s['engine_wall'], 1), fmt(s['engine_cpu'], 1),
                      fmt(n / s['engine_wall']), fmt(n / s['engine_cpu'])))
        if 'floor_wall' in s:
            self.w('| (a) floor: hand-written set-based SQL, one transaction (bench/sql/b1_floor.sql) |'
                   ' %s | %s s | %s s | %s | %s |'
                   % (fmt(n), fmt(s['floor_wall'], 1), fmt(s['floor_cpu'], 1),
                      fmt(n / s['floor_wall']), fmt(n / s['floor_cpu'])))
        if 'loop_wall' in s:
            k = s['loop_members']
            self.w('| (b) per-member PL/pgSQL loop, one transaction (bench/sql/b1_loop.sql) |'
                   ' %s | %s s | %s s | %s | %s |'
                   % (fmt(k), fmt(s['loop_wall'], 1), fmt(s['loop_cpu'], 1),
                      fmt(k / s['loop_wall']), fmt(k / s['loop_cpu'])))
        self.w()
        if 'engine_wall' in s and 'floor_wall' in s:
            self.w('- taskflow / floor: %s× the time (wall), %s× (CPU).'
                   % (fmt(s['engine_wall'] / s['floor_wall'], 2),
                      fmt(s['engine_cpu'] / s['floor_cpu'], 2)))
        if 'engine_wall' in s and 'loop_wall' in s:
            k = s['loop_members']
            self.w('- taskflow / loop: %s× as many members per second (wall), %s× (CPU).'
                   ' The loop runs on the first %s members only, to keep the run bounded;'
                   ' its rate per member does not depend on how many there are.'
                   % (fmt((n / s['engine_wall']) / (k / s['loop_wall']), 1),
                      fmt((n / s['engine_cpu']) / (k / s['loop_cpu']), 1), fmt(k)))
        if 'same_rows_floor' in s:
            self.w('- Same rows written (every member, timeline, history, outbox and chain_member'
                   ' column but generated ids, hashed): taskflow = floor: %s; taskflow = loop'
                   ' (first %s members): %s.' % (s['same_rows_floor'], fmt(s['loop_members']),
                                                 s['same_rows_loop']))
        self.w('- taskflow applied %s, errors %s.' % (fmt(s.get('engine_applied')),
                                                      s.get('engine_errors')))
        self.w()

    def entry(self):
        e = self.r.get('entry')
        if not e or 'check_wall' not in e:
            return
        self.w('## 2. Entry evaluation')
        self.w()
        self.w('An `always` chain whose first task\'s criteria, `%s`,' % e['criteria'])
        self.w('matches %s of %s members as of its instant (bench/sql/b2_fixture.sql).'
               % (fmt(e['matching']), fmt(self.b.args.members)))
        self.w()
        self.w('| | wall | backend CPU |')
        self.w('| --- | --- | --- |')
        self.w('| baseline: `SELECT count(*) FROM taskflow.member WHERE <criteria>` (median of 3) |'
               ' %s s | %s s |' % (fmt(e['count_wall'], 3), fmt(e['count_cpu'], 3)))
        self.w('| taskflow: entry check, `taskflow.run()` when nobody new matches (median of 3) |'
               ' %s s | %s s |' % (fmt(e['check_wall'], 3), fmt(e['check_cpu'], 3)))
        self.w('| taskflow: first entry run (enters %s members and applies step 1 to them) |'
               ' %s s | %s s |' % (fmt(e['first_entered']), fmt(e['first_wall'], 3),
                                   fmt(e['first_cpu'], 3)))
        self.w()
        self.w('Ratio of the entry check to the plain count: %s× (wall), %s× (CPU).'
               % (fmt(e['check_wall'] / e['count_wall'], 2), fmt(e['check_cpu'] / e['count_cpu'], 2)))
        self.w()

    def idle(self):
        i = self.r.get('idle')
        if not i or 'wakeup_ms' not in i:
            return
        self.w('## 3. Idle cost')
        self.w()
        self.w('%s members, each waiting in one of %s chains (scheduled daily, the next slot'
               % (fmt(self.b.args.members), fmt(i['chains'])))
        self.w('about 23 hours away), nothing due for ten days (bench/sql/b3_fixture.sql).')
        self.w()
        self.w('| one wake-up | wall | CPU |')
        self.w('| --- | --- | --- |')
        self.w('| the scheduler, woken %d times by a change that makes nothing due; wall ='
               ' its own `worker_status.last_run_ms` (transaction, run, next_wakeup, commit),'
               ' mean of %d (median %s, max %s); CPU = the scheduler process\'s, per wake-up |'
               ' **%s ms** | **%s ms** |'
               % (i['wakeups_measured'], i['wakeup_samples'], fmt(i['wakeup_p50_ms'], 3),
                  fmt(i['wakeup_max_ms'], 3), fmt(i['wakeup_ms'], 3), fmt(i['wakeup_cpu_ms'], 3)))
        if 'sql_run_ms' in i:
            self.w('| from SQL, `SELECT count(*) FROM taskflow.run(now())` (a row for every chain),'
                   ' each its own transaction, psql round trips included | %s ms | %s ms |'
                   % (fmt(i['sql_run_ms'], 3), fmt(i['sql_run_cpu_ms'], 3)))
            self.w('| from SQL, `SELECT taskflow.next_wakeup(now())` | %s ms | %s ms |'
                   % (fmt(i['sql_next_ms'], 3), fmt(i['sql_next_cpu_ms'], 3)))
        self.w()
        if 'idle_wakeups' in i:
            self.w('Left alone for %d s with `taskflow.safety_interval` = 300 s, the scheduler'
                   ' woke %d times (%s per minute) and used %s s of CPU; its next wake-up was'
                   ' %s s away.' % (i['idle_seconds'], i['idle_wakeups'],
                                    fmt(i['wakeups_per_minute'], 2), fmt(i['idle_cpu'], 2),
                                    fmt(i['next_wakeup_in_s'])))
        self.w()

    def latency(self):
        l = self.r.get('latency')
        if not l or 'p99' not in l:
            return
        a = self.b.args
        self.w('## 4. Latency with the scheduler running')
        self.w()
        self.w('In benchmark 3\'s database, with its scheduler running: one UPDATE made %d'
               % l['expected'])
        self.w('members (each in another chain) due at step 2 from 2 s ahead, %d ms apart, as'
               % a.latency_gap_ms)
        self.w('test/t/010_worker_basics.pl does. Due-to-done is the commit time of the step\'s')
        self.w('history row (`pg_xact_commit_timestamp`, `track_commit_timestamp = on`) minus')
        self.w('the due time.')
        self.w()
        self.w('| samples | min | p50 | p90 | p99 | max | scheduler runs |')
        self.w('| --- | --- | --- | --- | --- | --- | --- |')
        self.w('| %d of %d | %s ms | %s ms | %s ms | %s ms | %s ms | %s |'
               % (l['samples'], l['expected'], fmt(l['min'], 1), fmt(l['p50'], 1),
                  fmt(l['p90'], 1), fmt(l['p99'], 1), fmt(l['max'], 1), l.get('runs')))
        self.w()

    def delivery(self):
        d = self.r.get('delivery')
        if not d or 'baseline_rate' not in d:
            return
        self.w('## 5. Delivery')
        self.w()
        self.w('%s pending outbox rows (bench/sql/b5_fixture.sql; about %s bytes per message'
               % (fmt(d['messages']), fmt(d['message_bytes'])))
        self.w('as built) for the `email` channel, pointed at postfix\'s `smtp-sink` on')
        self.w('127.0.0.1 (from the Debian package, unpacked with `dpkg -x`).')
        self.w()
        self.w('| | connections | messages sent | seconds | msg/s |')
        self.w('| --- | --- | --- | --- | --- |')
        self.w('| baseline: bench/curl_baseline.c, libcurl multi, no database, the same MIME'
               ' messages (exported first with `taskflow.mime_message`) | %d | %s (%s failed) |'
               ' %s | %s |' % (d['connections'], fmt(d['baseline_sent']), fmt(d['baseline_failed']),
                             fmt(d['baseline_s'], 2), fmt(d['baseline_rate'])))
        if 'rate' in d:
            self.w('| taskflow: %d delivery worker(s), batch %d: claimed, built, sent, marked sent |'
                   ' %d | %s (%s not) | %s | %s |'
                   % (d['workers'], d['batch_size'], d['connections'], fmt(d['sent']),
                      fmt(d['not_sent']), fmt(d['seconds'], 2), fmt(d['rate'])))
            self.w()
            self.w('taskflow / baseline: %s×. From enabling the channel to the commit of the'
                   ' last batch\'s results; the delivery worker used %s s of CPU.'
                   % (fmt(d['rate'] / d['baseline_rate'], 2), fmt(d['worker_cpu'], 1)))
        self.w()

    def memory(self):
        m = self.r.get('memory')
        if not m:
            return
        self.w('## 6. Scheduler memory')
        self.w()
        self.w('Benchmark 1\'s fixture, served by the scheduler alone, once with only the first %s'
               % fmt(m.get('small', {}).get('due')))
        self.w('members in the chain and due, and once with all %s due. Peak memory of the scheduler'
               % fmt(m.get('large', {}).get('due')))
        self.w('process, sampled every 20 ms from /proc: `RssAnon` is its private memory;')
        self.w('`VmHWM` also counts the shared buffers it touched (`RssShmem`), which grows with')
        self.w('the data read, not with what the process keeps.')
        self.w()
        self.w('| due | applied | seconds | CPU s | members/s | peak RssAnon | VmHWM | RssShmem |')
        self.w('| --- | --- | --- | --- | --- | --- | --- | --- |')
        for k in ('small', 'large'):
            f = m.get(k)
            if f:
                self.w('| %s | %s | %s | %s | %s | %s kB | %s kB | %s kB |'
                       % (fmt(f['due']), fmt(f['applied']), fmt(f['seconds'], 1),
                          fmt(f['cpu'], 1), fmt(f['applied'] / f['seconds']),
                          fmt(f['rss_anon_kb']), fmt(f['vmhwm_kb']), fmt(f['rss_shmem_kb'])))
        self.w()

    @staticmethod
    def preview_ratio(p):
        """The preview's time over the real run's, as (text, verdict for
        ≤ 1.5×); a bound when one of them did not finish."""
        if 'wall' in p and 'run_wall' in p:
            q = p['wall'] / p['run_wall']
            return '%s×' % fmt(q, 2), q <= 1.5
        if p.get('timed_out') and 'run_wall' in p:
            q = p['limit'] / p['run_wall']
            return '> %s×' % fmt(q, 2), False if q > 1.5 else None
        if 'wall' in p and p.get('run_timed_out'):
            q = p['wall'] / p['run_limit']
            return '< %s×' % fmt(q, 2), True if q <= 1.5 else None
        return 'n/a', None

    def preview_rows(self, p):
        """Summary rows of benchmark 7: the 10 s target, then the ratio to
        the same year actually run."""
        if 'wall' in p:
            took = '%s s' % fmt(p['wall'], 2)
        else:
            took = 'did not finish in %d s' % p['limit']
        if 'run_wall' in p:
            base = 'the year actually run, %s s' % fmt(p['run_wall'], 2)
        elif p.get('run_timed_out'):
            base = 'the year actually run: did not finish in %d s' % p['run_limit']
        else:
            base = ''
        text, ok = self.preview_ratio(p)
        self.w('| 7 | preview, 1 year × %s members × 5 chains | %s | %s | %s | ≤ 10 s | %s |'
               % (fmt(p['members']), took, base, text if base else '',
                  verdict(p['wall'] <= 10 if 'wall' in p else False)))
        same = p.get('same_timeline')
        caveat = ('' if same else ' (timelines not compared)' if same is None
                  else ' (the timelines differ)')
        self.w('| 7 | | | | | ≤ 1.5× the year actually run | %s%s |' % (verdict(ok), caveat))
        if 'few_wall' in p:
            self.w('| 7 | preview, 1 year × 3 of the %s members | %s s | the whole preview, %s s'
                   ' | %s× | | |' % (fmt(p['members']), fmt(p['few_wall'], 2), fmt(p['wall'], 2),
                                    fmt(p['few_wall'] / p['wall'], 2)))

    def preview(self):
        p = self.r.get('preview')
        if not p or not ('wall' in p or p.get('timed_out')):
            return
        self.w('<a id="preview"></a>')
        self.w()
        self.w('## 7. Preview')
        self.w()
        self.w('`taskflow.preview(from, from + 1 year)` over %s members and the five chains of'
               % fmt(p['members']))
        if p.get('timed_out'):
            self.w('bench/sql/b7_fixture.sql did **not finish in %d s** (stopped, to keep the'
                   ' run bounded). Target ≤ 10 s.' % p['limit'])
        else:
            self.w('bench/sql/b7_fixture.sql: %s timeline rows (%s steps applied) at %s instants'
                   ' with a row,'
                   % (fmt(p['rows']), fmt(p['applied']), fmt(p['instants'])))
            self.w('in **%s s** (%s s of backend CPU). Target ≤ 10 s.' % (fmt(p['wall'], 2),
                                                                        fmt(p['cpu'], 2)))
        self.w()
        self.w('Baseline: the same year actually run by the engine, from another copy of the')
        self.w('same database — `taskflow.run(t)`, then `taskflow.next_wakeup(t)` for the next')
        self.w('instant, committed after each instant as the scheduler does (a procedure,')
        self.w('bench/sql/b7_run.sql), with the entry checks the preview simulates (`always`')
        self.w('and anchor chains once a day, the first at the start, instead of every')
        self.w('`taskflow.entry_interval`, 5 minutes by default: at that pace the real year is')
        self.w('some 105,000 engine runs, and not quite the same year — see the file).')
        if 'run_wall' in p:
            self.w('It ran %s instants (every engine run, those that wrote nothing included)'
                   % fmt(p['run_instants']))
            self.w('in **%s s** (%s s of backend CPU; the wall time includes a WAL flush at'
                   ' each commit).' % (fmt(p['run_wall'], 2), fmt(p['run_cpu'], 2)))
            if 'wall' in p:
                self.w('Preview / real run: **%s×** (wall), %s× (CPU); target ≤ 1.5×.'
                       % (fmt(p['wall'] / p['run_wall'], 2), fmt(p['cpu'] / p['run_cpu'], 2)))
        elif p.get('run_timed_out'):
            self.w('It did **not finish in %d s** (stopped; its committed history reaches %s).'
                   % (p['run_limit'], p.get('run_reached') or 'nothing'))
        same = p.get('same_timeline')
        if same is None:
            self.w('The two timelines were not compared in this run.')
        else:
            self.w('Same timeline — the real run\'s history rows in the range and the preview\'s'
                   ' rows, (at, chain, member, task, event) hashed in order: **%s**'
                   % ('yes' if same else 'no'))
            self.w('(rows, instants with a row, applied, md5: real run `%s`, preview `%s`).'
                   % (p['fp_run'], p['fp_preview']))
        self.w()
        if 'few_wall' in p:
            self.w('A few members: the same year previewed for three members (`member_ids =>'
                   ' \'%s\'`;' % self.b.FEW)
            self.w('their criteria read only their own data, so only they are simulated,')
            self.w('[preview.md](preview.md#previewing-a-few-members)): %s rows in **%s s**'
                   ' (%s s CPU);' % (fmt(p['few_rows']), fmt(p['few_wall'], 2),
                                    fmt(p['few_cpu'], 2)))
            self.w('for a hypothetical member (`%s`): %s rows in **%s s** (%s s CPU).'
                   % (self.b.HYPOTHETICAL, fmt(p['one_rows']), fmt(p['one_wall'], 2),
                      fmt(p['one_cpu'], 2)))
            if 'few_same' in p:
                self.w('The three members\' rows are those of the real run\'s history: **%s**.'
                       % ('yes' if p['few_same'] else 'no'))
            self.w()
