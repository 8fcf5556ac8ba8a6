"""Starting, stopping and waiting for the runner's child processes, and sampling their
resources (and the machine's) from /proc.

Every child is started through Proc, which records it in RUNNING (and in the pid file
bench.sh reads, if PIDFILE is set) until it is reaped; only those processes are signalled,
by PID, and each gets PR_SET_PDEATHSIG so that none outlives the runner."""

import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

from common import log

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
RUNNING = {}  # pid -> Proc: everything we started and have not reaped
PIDFILE = None  # set by run.py from --pidfile


def _child_setup(barrier_fd=None):
    def setup():
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the runner
        if barrier_fd is not None:
            os.dup2(barrier_fd, 3)
    return setup


def ns_of(host):
    tb, i = host
    return f"{tb}-h{i}"


class Proc:
    """A child process, reaped with wait4 so its rusage (CPU, max RSS) is kept."""

    def __init__(self, argv, host=None, stdout=None, stderr=None, stdin=None, barrier_fd=None):
        argv = [str(a) for a in argv]
        if barrier_fd is not None:
            # Block in sh until the runner closes the barrier's write end, then exec.
            argv = ["sh", "-c", 'read -r _ <&3 || :; exec "$@" 3<&-', "sh"] + argv
        if host is not None:
            # `ip netns exec` execs the command (no fork): the PID stays the command's.
            argv = ["ip", "netns", "exec", ns_of(host)] + argv
        self.argv = argv
        self.stdout_path = None if stdout is subprocess.PIPE else stdout
        self.stderr_path = stderr
        pipe = stdout is subprocess.PIPE
        out = subprocess.PIPE if pipe else open(stdout, "wb") if stdout else subprocess.DEVNULL
        err = open(stderr, "wb") if stderr else subprocess.DEVNULL
        self.t_start = time.monotonic()
        self.popen = subprocess.Popen(
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_child_setup(barrier_fd),
            pass_fds=(barrier_fd,) if barrier_fd is not None else (),
        )
        if stdout and not pipe:
            out.close()
        if stderr:
            err.close()
        self.pid = self.popen.pid
        self.t_end = None
        self.status = None
        self.rusage = None
        RUNNING[self.pid] = self
        if PIDFILE:
            with open(PIDFILE, "a") as f:
                f.write(f"{self.pid}\n")

    def poll(self):
        if self.t_end is not None:
            return True
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status, ru = self.pid, 0, None
        if pid == 0:
            return False
        self.t_end = time.monotonic()
        self.status = os.waitstatus_to_exitcode(status)
        self.rusage = ru
        self.popen.returncode = self.status
        RUNNING.pop(self.pid, None)
        return True

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def send(self, sig):
        if self.t_end is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        """SIGTERM (or sig), wait, then SIGKILL. Returns the exit status."""
        if self.poll():
            return self.status
        self.send(sig)
        if not self.wait(grace):
            self.send(signal.SIGKILL)
            self.wait(5)
        return self.status

    @property
    def elapsed(self):
        return (self.t_end or time.monotonic()) - self.t_start

    @property
    def cpu_seconds(self):
        if self.rusage is None:
            return None
        return self.rusage.ru_utime + self.rusage.ru_stime

    @property
    def maxrss_kib(self):
        return self.rusage.ru_maxrss if self.rusage is not None else None

    def stdout_text(self):
        try:
            return Path(self.stdout_path).read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    def stderr_tail(self, n=15):
        try:
            lines = Path(self.stderr_path).read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except (OSError, TypeError):
            return ""


def kill_all():
    for p in list(RUNNING.values()):
        p.stop(grace=3)


def run(argv, timeout=60, check=True, capture=True):
    r = subprocess.run([str(a) for a in argv], capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def in_host(host, argv, timeout=30, check=True):
    if host is not None:
        argv = ["ip", "netns", "exec", ns_of(host)] + list(argv)
    return run(argv, timeout=timeout, check=check)


def wait_for_text(path, text, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in Path(path).read_text(errors="replace"):
                return True
        except OSError:
            pass
        if proc is not None and proc.poll():
            return False
        time.sleep(0.02)
    return False


def parse_json_line(text):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def proc_status(pid, field):
    """A field of /proc/PID/status in KiB (VmHWM, VmRSS), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path):
    text = Path(path).read_text()
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_cpu(pid):
    """CPU seconds used so far by PID (all threads), or None."""
    try:
        return _stat_cpu(f"/proc/{pid}/stat")[1]
    except (OSError, ValueError):
        return None


def thread_cpu(pid):
    """{thread name: CPU seconds} summed over threads of the same name."""
    out = {}
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                comm, cpu = _stat_cpu(f"/proc/{pid}/task/{t}/stat")
            except (OSError, ValueError):
                continue
            comm = re.sub(r"\d+$", "#", comm)
            out[comm] = out.get(comm, 0.0) + cpu
    except OSError:
        pass
    return out


def children_of(pid):
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def cpu_snap():
    """(total, idle) jiffies of the whole machine, from /proc/stat."""
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(vals), vals[3] + vals[4]


def busy_cores(a, b):
    total = b[0] - a[0]
    if total <= 0:
        return None
    return round((1 - (b[1] - a[1]) / total) * (os.cpu_count() or 1), 2)


def tcp_established(pid):
    """Established TCP connections PID holds: its socket fds whose inodes the TCP tables of
    its own network namespace (/proc/PID/net/tcp and tcp6) list in state 01. None if the
    process is gone."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()  # sl local remote st tx:rx tr:when retrnsmt uid timeout inode ...
            if len(f) > 9 and f[3] == "01" and f[9] in inodes:
                n += 1
    return n


# ---------------------------------------------------------------- crowds: processes released together


def start_together(make):
    """Starts the processes `make(barrier_fd)` returns, each blocked on one pipe until
    all exist, then releases them at once. Returns (processes, release time)."""
    rfd, wfd = os.pipe()
    try:
        procs = make(rfd)
    except BaseException:
        os.close(wfd)  # whatever did start is released rather than left blocked
        raise
    finally:
        os.close(rfd)
    time.sleep(0.3)  # every child is blocked on the barrier now
    t0 = time.monotonic()
    os.close(wfd)
    return procs, t0


def await_reports(procs, t0, deadline):
    """Waits, until `deadline`, for each process to print its JSON line (or to exit
    without one). Returns (seconds from `t0` to each line, NaN for an exit without
    one, None if neither came in time; the parsed lines)."""
    done = [None] * len(procs)
    reports = [None] * len(procs)
    while time.monotonic() < deadline and None in done:
        for k, g in enumerate(procs):
            if done[k] is None:
                try:
                    empty = os.stat(g.stdout_path).st_size == 0
                except OSError:
                    empty = True
                rep = None if empty else parse_json_line(g.stdout_text())
                if rep is not None:
                    done[k] = time.monotonic() - t0
                    reports[k] = rep
                elif g.poll():
                    done[k] = float("nan")
        time.sleep(0.02)
    return done, reports


def crowd_problems(bench, procs, reports, paths, source, size, rundir, verify=None):
    """Stops a crowd's processes and checks each one's copy (`paths[k]`, or the `path` of
    its report) against `source`, or with `verify(path)` when given. Returns what went
    wrong; keeps the failed ones' output."""
    for g in procs:
        g.send(signal.SIGTERM)
    for g in procs:
        g.stop(grace=10)
    problems = []
    for k, g in enumerate(procs):
        who = f"downloader {Path(g.stdout_path).parent.name}"
        if reports[k] is None:
            problems.append(f"{who}: no report (exit {g.status}): {g.stderr_tail(5)}")
        else:
            path = paths[k] or reports[k]["path"]
            p = verify(path) if verify else bench.verify_copy(path, source, size)
            if p:
                problems.append(f"{who}: {p}")
    if problems:
        log("      " + "\n      ".join(problems))
        keep = bench.out / "failed" / f"{rundir.parent.name}-{rundir.name}"
        for g in procs:
            d = Path(g.stdout_path).parent
            (keep / d.name).mkdir(parents=True, exist_ok=True)
            for f in (g.stdout_path, g.stderr_path):
                if Path(f).exists():
                    shutil.copy(f, keep / d.name / Path(f).name)
    return problems


class CrowdMeter:
    """What a crowd's processes hold and spend: every `interval` s from `start` (the release)
    to `done`, on a thread of its own (so that sampling does not delay the runner noticing a
    report), the established TCP connections of each downloader and of the seeder (and,
    for a process with a `stats_path`, the peers its own stats say it is connected to:
    libtorrent counts its uTP links there); at `done` (the crowd finished, not yet stopped),
    each one's peak RSS (VmHWM) and CPU (utime + stime from /proc/PID/stat), the seeder's CPU
    counted from the release on; and the machine's busy cores from the release to `done`."""

    def __init__(self, seeder=None, interval=1.0):
        self.seeder = seeder
        self.interval = interval
        self.procs = []
        self.tcp = []  # one list a sample: the connections of each downloader, then the seeder's
        self.peers = []  # the same, from the processes' own stats (None where they have none)
        self.anon = []  # the same, each process's private memory (RssAnon, KiB)
        self.sample_seconds = []  # how long each sample took
        self.sampler_cpu = 0.0
        self._stop = threading.Event()
        self._thread = None

    def start(self, procs):
        """At the release of `procs` (the downloaders)."""
        self.procs = list(procs) + ([self.seeder] if self.seeder else [])
        self.seeder_cpu0 = proc_cpu(self.seeder.pid) if self.seeder else None
        t = os.times()
        self.own_cpu0 = t.user + t.system
        self.cpu0 = cpu_snap()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._sample_loop, name="crowd-meter", daemon=True)
        self._thread.start()

    def _sample_loop(self):
        cpu0 = time.thread_time()
        next_t = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            self.tcp.append([tcp_established(p.pid) for p in self.procs])
            self.peers.append([_stats_peers(p) for p in self.procs])
            self.anon.append([proc_status(p.pid, "RssAnon") for p in self.procs])
            self.sample_seconds.append(time.monotonic() - t)
            next_t = max(next_t + self.interval, time.monotonic())
            self._stop.wait(next_t - time.monotonic())
        self.sampler_cpu = time.thread_time() - cpu0

    def stop(self):
        """Ends the sampling (also when the run broke off before `done`)."""
        self._stop.set()

    def done(self):
        """After the crowd is done (every report in, or the deadline), before it is stopped."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self.busy_cores = busy_cores(self.cpu0, cpu_snap())
        self.seconds = time.monotonic() - self.t0
        self.vmhwm = [proc_status(p.pid, "VmHWM") for p in self.procs]
        # Code and libraries mapped from files: the same pages in every process, counted in
        # each one's RSS.
        self.rss_file = [proc_status(p.pid, "RssFile") for p in self.procs]
        self.cpu = [proc_cpu(p.pid) for p in self.procs]
        t = os.times()
        self.own_cpu = t.user + t.system - self.own_cpu0

    def result(self):
        known = lambda xs: [x for x in xs if x is not None]
        med = lambda xs: statistics.median(known(xs)) if known(xs) else None
        n = len(self.procs) - (1 if self.seeder else 0)
        vmhwm, cpu = self.vmhwm[:n], self.cpu[:n]
        anon_peaks = [max(known([s[k] for s in self.anon]), default=None) for k in range(len(self.procs))]
        seeder_cpu = None
        if self.seeder and self.cpu[n] is not None and self.seeder_cpu0 is not None:
            seeder_cpu = round(self.cpu[n] - self.seeder_cpu0, 2)
        res = {
            "downloader_vmhwm_kib": vmhwm,
            "downloader_vmhwm_max_kib": max(known(vmhwm), default=None),
            "downloader_vmhwm_median_kib": med(vmhwm),
            # Private memory: each process's largest RssAnon sample (1 s apart, so a peak
            # shorter than that may be missed), and its file-backed RSS at the end.
            "downloader_anon_peak_max_kib": max(known(anon_peaks[:n]), default=None),
            "downloader_anon_peak_median_kib": med(anon_peaks[:n]),
            "downloader_rss_file_median_kib": med(self.rss_file[:n]),
            "seeder_vmhwm_kib": self.vmhwm[n] if self.seeder else None,
            "downloader_cpu_s": [round(c, 2) if c is not None else None for c in cpu],
            "crowd_cpu_s": round(sum(known(cpu)), 2) if known(cpu) else None,
            "crowd_cpu_missing": n - len(known(cpu)),
            "seeder_cpu_s": seeder_cpu,
            "busy_cores_release_to_done": self.busy_cores,
            "seconds_release_to_done": round(self.seconds, 2),
            "conn_samples": len(self.tcp),
            "runner_cpu_s": round(self.own_cpu, 2),  # this runner's own, the sampling's included
            "sampler_cpu_s": round(self.sampler_cpu, 2),
            "sample_seconds_median": round(statistics.median(self.sample_seconds), 3) if self.sample_seconds else None,
            "sample_seconds_max": round(max(self.sample_seconds, default=0), 3),
        }
        # Connections: each downloader's peak and median over the run, the seeder's peak, and
        # the largest sum over all of them at one sample (every connection is between two of
        # them, so that counts both ends).
        for prefix, samples in (("conn", self.tcp), ("peers", self.peers)):
            if not any(v is not None for s in samples for v in s):
                continue
            each = [[s[k] for s in samples if s[k] is not None] for k in range(len(self.procs))]
            peaks = [max(v) if v else None for v in each[:n]]
            res.update({
                f"{prefix}_peak_each": peaks,
                f"{prefix}_median_each": [statistics.median(v) if v else None for v in each[:n]],
                f"{prefix}_peak_max": max(known(peaks), default=None),
                f"{prefix}_peak_median": med(peaks),
                f"{prefix}_seeder_peak": max(each[n], default=None) if self.seeder else None,
                f"{prefix}_total_peak": max((sum(known(s)) for s in samples), default=None),
                f"{prefix}_totals": [sum(known(s)) for s in samples],
            })
        return res


def _stats_peers(proc):
    """The peers a process's own stats file (its `stats_path`, if any) says it is connected to."""
    path = getattr(proc, "stats_path", None)
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text()).get("peers")
    except (OSError, ValueError):
        return None
