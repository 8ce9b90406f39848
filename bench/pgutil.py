"""pgutil.py — running psql against the benchmark cluster, and timing what
a backend does (wall clock and the backend's own CPU time, read from
/proc, so that figures stay comparable on a machine other work shares).
"""

import os
import subprocess
import tempfile
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


class PsqlError(Exception):
    pass


class Cluster:
    """A running cluster reached through its Unix socket directory."""

    def __init__(self, host, bindir, user='postgres'):
        self.host = host
        self.bindir = bindir
        self.user = user

    def psql(self, db, script, variables=None, timeout=600, check=True):
        """Runs a script (psql syntax) in db; returns its output (-At)."""
        cmd = [os.path.join(self.bindir, 'psql'), '-X', '-q', '-At',
               '-v', 'ON_ERROR_STOP=1', '-h', self.host, '-U', self.user,
               '-d', db]
        for k, v in (variables or {}).items():
            cmd += ['-v', '%s=%s' % (k, v)]
        try:
            p = subprocess.run(cmd, input=script, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PsqlError('timed out after %ss' % timeout)
        if check and p.returncode != 0:
            raise PsqlError(p.stderr.strip() or 'psql exit %d' % p.returncode)
        return p.stdout.strip()

    def value(self, db, query, variables=None, timeout=600):
        return self.psql(db, query + '\n', variables, timeout)

    def timed(self, db, body, variables=None, timeout=600, setup=''):
        """Runs setup, then body, in one session; returns (wall seconds,
        backend CPU seconds, output of body)."""
        fd, marks = tempfile.mkstemp(prefix='bench-marks-')
        os.close(fd)
        mark = ('\\! echo "$(date +%%s.%%N) $(cut -d" " -f14,15 /proc/$BENCH_PID/stat)"'
                ' >> %s\n' % marks)
        script = (setup + '\n'
                  'SELECT pg_backend_pid() AS bench_pid \\gset\n'
                  '\\setenv BENCH_PID :bench_pid\n'
                  '\\o /dev/null\nSELECT 1;\n\\o\n'
                  + mark + body + '\n' + mark)
        try:
            out = self.psql(db, script, variables, timeout)
            with open(marks) as f:
                rows = [line.split() for line in f if line.strip()]
        finally:
            os.unlink(marks)
        (t0, u0, s0), (t1, u1, s1) = rows[0], rows[-1]
        wall = float(t1) - float(t0)
        cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / CLK_TCK
        return wall, cpu, out


def proc_cpu(pid):
    """CPU seconds a process has used so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory(pid):
    """(RssAnon, RssShmem, VmHWM) of a process in kB."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('RssAnon', 'RssShmem', 'VmHWM', 'VmRSS'):
                out[k] = int(v.split()[0])
    return out


def wait_for(fn, timeout, interval=0.1):
    """Calls fn until it returns something true; returns it, or None."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return None
