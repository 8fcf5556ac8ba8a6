#!/usr/bin/env python3
"""The benchmark runner behind scripts/bench.sh (SPEC §7, §9).

Runs inside the private network namespace bench.sh makes (loopback only, private
/run/netns), as root, with the release binary already built. Standard library only,
except the flash-crowd plot (matplotlib, imported when drawing).

Every scenario measures p2p and its reference in the same run, alternating, and
records each run. Results go to bench-results/<stamp>/: results.json (everything),
runs.tsv (one row per measured run), summary.md (the Markdown table, also printed),
flash.png (the plot).

Safety: traffic only on loopback and on testbed hosts 198.18.0.0/24 built with
scripts/testbed.sh; every wait is bounded in time; only processes started here are
signalled, by PID (and each child gets PR_SET_PDEATHSIG, so none outlives us).
"""

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "scripts" / "testbed.sh"
# The BitTorrent reference: libtorrent-rasterbar through Debian's python3-libtorrent.
BT = REPO / "scripts" / "bench" / "bt.py"
BT_PORT = 6881
PAYLOAD_BPS = 100e6 * 1448 / 1514  # 95.64 Mbit/s of TCP payload through tbf at 100mbit
NOMINAL_BPS = 100e6
MiB = 1 << 20
GiB = 1 << 30
RSS_TARGET_KIB = 64 * 1024

# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
RUNNING = {}  # pid -> Proc: everything we started and have not reaped
PIDFILE = None


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


def bittorrent_available():
    """Whether the BitTorrent reference can run (Debian's python3-libtorrent)."""
    return subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True).returncode == 0


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


def median_range(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


# ---------------------------------------------------------------- testbed

class Testbed:
    ACTIVE = []

    def __init__(self, name, n, rate=None):
        self.name, self.n = name, n
        args = [TESTBED, "up", name, n] + (["--rate", rate] if rate else [])
        run(["bash", TESTBED, "down", name], timeout=120, check=False)
        Testbed.ACTIVE.append(self)
        run(["bash", *args], timeout=300)
        log(f"  testbed {name}: {n} hosts{', egress ' + rate if rate else ''}")

    def rate(self, i, rate):
        run(["bash", TESTBED, "rate", self.name, i, rate], timeout=60)

    def host(self, i):
        return (self.name, i)

    @staticmethod
    def addr(i):
        return f"198.18.0.{i}"

    def down(self):
        run(["bash", TESTBED, "down", self.name], timeout=120, check=False)
        if self in Testbed.ACTIVE:
            Testbed.ACTIVE.remove(self)


def down_all():
    for tb in list(Testbed.ACTIVE):
        tb.down()


# ---------------------------------------------------------------- helpers

def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs or (1 if args.quick else 3)
        self.p2p = Path(args.p2p).resolve()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = Path(args.results) / (stamp + ("-quick" if self.quick else ""))
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) / stamp
        self.work.mkdir(parents=True, exist_ok=True)
        self.data = Path(args.data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.results = {"meta": {}, "scenarios": {}, "notes": []}
        self.tsv = []

    # sizes
    def size(self, full, quick):
        return quick if self.quick else full

    def data_file(self, size):
        """A file of `size` random bytes, made once and kept in the data folder."""
        path = self.data / f"random-{size}.bin"
        if not path.exists() or path.stat().st_size != size:
            log(f"  making {path.name} ({size / MiB:.0f} MiB of random bytes)")
            tmp = path.with_suffix(".tmp")
            with open("/dev/urandom", "rb") as src, open(tmp, "wb") as dst:
                left = size
                while left:
                    block = src.read(min(left, 4 * MiB))
                    dst.write(block)
                    left -= len(block)
            tmp.rename(path)
        return path

    def share_with(self, folder, name, size):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            os.link(self.data_file(size), target)
        return target

    def p2p_argv(self, cmd, iface, disc_port, base, share=None, extra=()):
        base.mkdir(parents=True, exist_ok=True)
        share = share or base / "share"
        for d in (share, base / "downloads", base / "state"):
            d.mkdir(parents=True, exist_ok=True)
        return [self.p2p, cmd, *extra, "--interface", iface, "--port", "0",
                "--discovery-port", disc_port, "--share", share,
                "--downloads", base / "downloads", "--state", base / "state",
                "--distribute-interval", "0", "--log-level", self.args.log_level]

    def start_seeder(self, host, iface, disc_port, base, share, options=()):
        p = Proc(self.p2p_argv("serve", iface, disc_port, base, share, extra=options), host=host,
                 stdout=base / "stdout", stderr=base / "stderr")
        return p

    def await_ready(self, seeders, timeout=300):
        for p in seeders:
            if not wait_for_text(p.stderr_path, "peer ready", timeout, p):
                raise RuntimeError(f"seeder did not become ready:\n{p.stderr_tail()}")
        time.sleep(0.5)  # discovery starts right after "peer ready"

    def start_nginx(self, host, addr, port, root, base):
        base.mkdir(parents=True, exist_ok=True)
        conf = base / "nginx.conf"
        conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    server {{
        listen {addr}:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
        p = Proc(["nginx", "-p", f"{base}/", "-e", f"{base}/error.log", "-c", conf], host=host,
                 stdout=base / "stdout", stderr=base / "stderr")
        # Ready when it answers (bounded: 50 tries).
        for _ in range(50):
            r = self.in_host(host, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1",
                                    f"http://{addr}:{port}/"], check=False)
            if r.stdout.strip() in ("200", "403", "404"):
                return p
            if p.poll():
                break
            time.sleep(0.1)
        raise RuntimeError(f"nginx on {addr}:{port} did not start: {p.stderr_tail()} "
                           f"{(base / 'error.log').read_text() if (base / 'error.log').exists() else ''}")

    def start_iperf_server(self, host, addr, port, base):
        base.mkdir(parents=True, exist_ok=True)
        p = Proc(["iperf3", "-s", "-B", addr, "-p", port, "--forceflush"], host=host,
                 stdout=base / "iperf-server.out", stderr=base / "iperf-server.err")
        if not wait_for_text(base / "iperf-server.out", "Server listening", 10, p):
            raise RuntimeError(f"iperf3 server did not start: {p.stderr_tail()}")
        return p

    def in_host(self, host, argv, timeout=30, check=True):
        if host is not None:
            argv = ["ip", "netns", "exec", ns_of(host)] + list(argv)
        return run(argv, timeout=timeout, check=check)

    def verify_copy(self, path, source, size):
        """Size and the first and last MiB match the source (p2p verifies every chunk itself)."""
        path = Path(path)
        if not path.exists():
            return f"missing {path}"
        if path.stat().st_size != size:
            return f"size {path.stat().st_size} != {size}"
        with open(path, "rb") as a, open(source, "rb") as b:
            for off in (0, max(0, size - MiB)):
                a.seek(off)
                b.seek(off)
                if a.read(MiB) != b.read(MiB):
                    return f"content differs at {off}"
        return None

    def cleanup_dir(self, d):
        shutil.rmtree(d, ignore_errors=True)
        run(["sync"], timeout=120, check=False)

    def meter_start(self, warm=0):
        """Before a measured run: wait (bounded) for the machine to be quiet, remember
        the background load, warm the page cache for `warm` bytes of writes, and start
        counting the machine's busy CPU."""
        bg = self.quiet()
        if warm and not self.args.no_warm:
            self.warm_memory(int(warm * 1.1))
        self._meter = (bg, cpu_snap())

    def warm_memory(self, nbytes):
        """Writes and deletes a scratch file of nbytes in the work folder, so that the
        run that follows writes into page-cache pages the hypervisor has backed.

        On this VM, memory the guest frees is handed back to the host within seconds
        (virtio-balloon free page reporting); the next first touch of such a page costs
        a host fault: writing 1 GiB into the page cache took ~2 s of system time cold
        against ~0.35 s right after the same amount was written and freed. Without this
        step the to-disk figures measure that, unevenly between tools."""
        path = self.work / "warm.scratch"
        block = bytes(4 * MiB)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = nbytes
            while left > 0:
                left -= os.write(fd, block[:min(left, len(block))])
        finally:
            os.close(fd)
            os.unlink(path)

    def probe_first_touch(self):
        """Seconds of writing 256 MiB into the page cache cold (after 4 s idle) and warm."""
        def write_once():
            path = self.work / "probe.scratch"
            block = bytes(4 * MiB)
            t = time.monotonic()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            for _ in range(64):
                os.write(fd, block)
            os.close(fd)
            dt = time.monotonic() - t
            os.unlink(path)
            return dt
        time.sleep(4)
        cold = write_once()
        warm = write_once()
        return {"cold_s_per_gib": round(cold * 4, 2), "warm_s_per_gib": round(warm * 4, 2)}

    def quiet(self):
        """Cores busy over 1 s while nothing of ours runs; waits up to --idle-wait
        seconds (bounded) for fewer than --idle-threshold cores busy."""
        deadline = time.monotonic() + self.args.idle_wait
        while True:
            a = cpu_snap()
            time.sleep(1)
            bg = busy_cores(a, cpu_snap())
            if bg is None or bg < self.args.idle_threshold or time.monotonic() >= deadline:
                return bg
            time.sleep(2)

    def record(self, scenario, variant, tool, run_i, seconds, ok, **extra):
        row = {"scenario": scenario, "variant": variant, "tool": tool, "run": run_i,
               "seconds": seconds, "ok": ok, **extra}
        if getattr(self, "_meter", None):
            row["bg_cores_before"] = self._meter[0]
            row["busy_cores_during"] = busy_cores(self._meter[1], cpu_snap())
            self._meter = None
        self.tsv.append(row)
        mark = "" if ok else "  FAILED"
        if isinstance(seconds, (int, float)):
            log(f"    {variant:<14} {tool:<16} run {run_i}: {seconds:8.3f} s{mark}")
        else:
            log(f"    {variant:<14} {tool:<16} run {run_i}: {seconds}{mark}")
        return row

    @staticmethod
    def parse_json_line(text):
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
        return None

    # ------------------------------------------------------------ single

    def p2p_get_once(self, host, iface, disc_port, name, size, source, rundir, seeders=(), timeout=600, options=()):
        """One `p2p get --json`: returns a dict with wall, seconds, cpu, ... and ok."""
        argv = self.p2p_argv("get", iface, disc_port, rundir, extra=(name, "--json", "--timeout", timeout, *options))
        seed_cpu0 = {s.pid: thread_cpu(s.pid) for s in seeders}
        g = Proc(argv, host=host, stdout=rundir / "stdout", stderr=rundir / "stderr")
        last_threads, samples = {}, []
        deadline = time.monotonic() + timeout + 30
        prev = (time.monotonic(), 0.0)
        next_sample = 0.0
        while not g.poll():  # exit seen within 5 ms; CPU sampled every 100 ms
            now = time.monotonic()
            if now > deadline:
                g.stop(grace=3)
                break
            if now >= next_sample:
                next_sample = now + 0.1
                snap = thread_cpu(g.pid)
                if snap:
                    last_threads = snap
                    tot = sum(snap.values())
                    if now - prev[0] >= 0.5:
                        samples.append(round(100 * (tot - prev[1]) / (now - prev[0]), 1))
                        prev = (now, tot)
            time.sleep(0.005)
        wall = g.elapsed
        seed_threads = {}
        for s in seeders:
            after = thread_cpu(s.pid)
            before = seed_cpu0[s.pid]
            for k, v in after.items():
                seed_threads[k] = seed_threads.get(k, 0.0) + v - before.get(k, 0.0)
        report = self.parse_json_line(g.stdout_text())
        problem = None
        if g.status != 0:
            problem = f"exit {g.status}: {g.stderr_tail()}"
        elif report is None:
            problem = "no JSON report"
        else:
            problem = self.verify_copy(report.get("path", ""), source, size)
        res = {
            "wall": wall, "seconds": (report or {}).get("seconds"), "ok": problem is None,
            "problem": problem, "cpu": g.cpu_seconds, "maxrss_kib": g.maxrss_kib,
            "cpu_pct": round(100 * g.cpu_seconds / wall, 1) if g.cpu_seconds is not None else None,
            "cpu_pct_samples": samples,
            "threads_cpu": {k: round(v, 2) for k, v in sorted(last_threads.items(), key=lambda kv: -kv[1])[:8]},
            "seeder_cpu": round(sum(seed_threads.values()), 2) if seeders else None,
            "seeder_cpu_pct": round(100 * sum(seed_threads.values()) / wall, 1) if seeders else None,
            "seeder_threads_cpu": {k: round(v, 2) for k, v in sorted(seed_threads.items(), key=lambda kv: -kv[1])[:8]},
            "bytes_from_peers": (report or {}).get("bytesFromPeers"),
        }
        if problem:
            log(f"      p2p get problem: {problem}")
            keep = self.out / "failed" / rundir.name
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("stdout", "stderr"):
                if (rundir / f).exists():
                    shutil.copy(rundir / f, keep / f)
        return res

    def curl_once(self, host, url, size, source, rundir, timeout=600, server_pids=()):
        rundir.mkdir(parents=True, exist_ok=True)
        out = rundir / "file"
        srv0 = sum(proc_cpu(p) or 0 for p in server_pids)
        c = Proc(["curl", "-sS", "--fail", "--max-time", timeout, "-o", out, "-w", "%{http_code} %{time_total}", url],
                 host=host, stdout=rundir / "stdout", stderr=rundir / "stderr")
        c.wait(timeout + 30) or c.stop()
        srv1 = sum(proc_cpu(p) or 0 for p in server_pids)
        problem = None if c.status == 0 else f"curl exit {c.status}: {c.stderr_tail()}"
        problem = problem or self.verify_copy(out, source, size)
        return {"wall": c.elapsed, "ok": problem is None, "problem": problem, "cpu": c.cpu_seconds,
                "cpu_pct": round(100 * c.cpu_seconds / c.elapsed, 1) if c.cpu_seconds is not None else None,
                "server_cpu": round(srv1 - srv0, 2), "server_cpu_pct": round(100 * (srv1 - srv0) / c.elapsed, 1)}

    def iperf_once(self, host, addr, port, size, rundir):
        rundir.mkdir(parents=True, exist_ok=True)
        c = Proc(["iperf3", "-c", addr, "-p", port, "-n", size, "-J"], host=host,
                 stdout=rundir / "iperf.json", stderr=rundir / "iperf.err")
        c.wait(300) or c.stop()
        try:
            j = json.loads(c.stdout_text())
            rx = j["end"]["sum_received"]
            return {"wall": c.elapsed, "seconds": rx["seconds"], "bps": rx["bits_per_second"], "ok": True,
                    "problem": None}
        except (ValueError, KeyError) as e:
            return {"wall": c.elapsed, "seconds": None, "bps": None, "ok": False, "problem": f"iperf3: {e}"}

    def scenario_single(self, where):
        size = self.size(1 * GiB, 64 * MiB)
        name = "single.bin"
        key = f"single-{where}"
        base = self.work / key
        source = self.data_file(size)
        share = base / "seed-share"
        self.share_with(share, name, size)
        log(f"== single source over {where}: {size / MiB:.0f} MiB, {self.runs} run(s)")
        tb = None
        procs = []
        try:
            if where == "testbed":
                tb = Testbed("bchs", 2)
                seed_host, get_host, iface, addr, disc = tb.host(1), tb.host(2), "eth0", tb.addr(1), 47610
            else:
                seed_host, get_host, iface, addr, disc = None, None, "lo", "127.0.0.1", 47611
            seeder = self.start_seeder(seed_host, iface, disc, base / "seeder", share)
            procs.append(seeder)
            self.await_ready([seeder])
            nginx = self.start_nginx(seed_host, addr, 18080, share, base / "nginx")
            procs.append(nginx)
            iperf = self.start_iperf_server(seed_host, addr, 15201, base / "iperf")
            procs.append(iperf)
            url = f"http://{addr}:18080/{name}"
            runs = {"p2p": [], "curl": [], "iperf3": []}
            for r in range(self.runs):
                rd = base / f"run{r}"
                self.meter_start(warm=size)
                res = self.p2p_get_once(get_host, iface, disc, name, size, source, rd / "p2p", [seeder])
                runs["p2p"].append(res)
                self.record(key, where, "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                            cpu_pct=res["cpu_pct"], seeder_cpu_pct=res["seeder_cpu_pct"])
                self.cleanup_dir(rd)
                self.meter_start(warm=size)
                res = self.curl_once(get_host, url, size, source, rd / "curl",
                                     server_pids=[nginx.pid] + children_of(nginx.pid))
                runs["curl"].append(res)
                self.record(key, where, "curl", r, res["wall"], res["ok"], cpu_pct=res["cpu_pct"],
                            server_cpu_pct=res["server_cpu_pct"])
                self.cleanup_dir(rd)
                self.meter_start()
                res = self.iperf_once(get_host, addr, 15201, size, rd / "iperf")
                runs["iperf3"].append(res)
                self.record(key, where, "iperf3", r, res["seconds"] if res["seconds"] else "failed", res["ok"],
                            gbps=(res["bps"] or 0) / 1e9)
                self.cleanup_dir(rd)
            seeder_hwm = proc_status(seeder.pid, "VmHWM")
        finally:
            for p in reversed(procs):
                p.stop()
            if tb:
                tb.down()
        ok = lambda xs: [x for x in xs if x["ok"]]
        s = {
            "size": size, "where": where, "runs": runs,
            "p2p_wall": median_range([x["wall"] for x in ok(runs["p2p"])]),
            "p2p_seconds": median_range([x["seconds"] for x in ok(runs["p2p"])]),
            "curl": median_range([x["wall"] for x in ok(runs["curl"])]),
            "iperf3": median_range([x["seconds"] for x in ok(runs["iperf3"])]),
            "p2p_failures": len(runs["p2p"]) - len(ok(runs["p2p"])),
            "curl_failures": len(runs["curl"]) - len(ok(runs["curl"])),
            "p2p_cpu_pct": median_range([x["cpu_pct"] for x in ok(runs["p2p"])]),
            "seeder_cpu_pct": median_range([x["seeder_cpu_pct"] for x in ok(runs["p2p"])]),
            "curl_cpu_pct": median_range([x["cpu_pct"] for x in ok(runs["curl"])]),
            "nginx_cpu_pct": median_range([x["server_cpu_pct"] for x in ok(runs["curl"])]),
            "seeder_vmhwm_kib": seeder_hwm,
        }
        self.results["scenarios"][key] = s

    # ------------------------------------------------------------ encrypted

    def scenario_encrypted(self):
        """Single source on loopback, without and with a network key (`--secret-file`),
        alternating run by run: what authenticating and encrypting every frame (AES-GCM)
        costs. Issue 5's goal: encrypted throughput >= 70 % of plaintext."""
        size = self.size(1 * GiB, 256 * MiB)
        name = "encrypted.bin"
        key = "encrypted"
        base = self.work / key
        source = self.data_file(size)
        share = base / "seed-share"
        self.share_with(share, name, size)
        secret = base / "secret"
        secret.write_text("bench-" + os.urandom(16).hex() + "\n")
        secret.chmod(0o600)
        # A keyed and an unkeyed swarm cannot see each other: each has its own seeder and
        # discovery port; both serve the same file from the same share folder.
        variants = {"plaintext": (47612, ()), "encrypted": (47613, ("--secret-file", secret))}
        log(f"== encrypted vs plaintext over loopback: {size / MiB:.0f} MiB, {self.runs} run(s) each, alternating")
        procs = []
        runs = {v: [] for v in variants}
        try:
            seeders = {}
            for variant, (disc, options) in variants.items():
                seeders[variant] = self.start_seeder(None, "lo", disc, base / f"seeder-{variant}", share, options)
                procs.append(seeders[variant])
            self.await_ready(list(seeders.values()))
            for r in range(self.runs):
                for variant, (disc, options) in variants.items():
                    rd = base / f"run{r}-{variant}"
                    self.meter_start(warm=size)
                    res = self.p2p_get_once(None, "lo", disc, name, size, source, rd, [seeders[variant]],
                                            options=options)
                    runs[variant].append(res)
                    self.record(key, variant, "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                                cpu_pct=res["cpu_pct"],
                                seeder_cpu_pct=res["seeder_cpu_pct"], cpu=res["cpu"], seeder_cpu=res["seeder_cpu"])
                    self.cleanup_dir(rd)
            seeder_hwm = {v: proc_status(p.pid, "VmHWM") for v, p in seeders.items()}
        finally:
            for p in reversed(procs):
                p.stop()
        ok = lambda xs: [x for x in xs if x["ok"]]
        s = {"size": size, "runs": runs, "seeder_vmhwm_kib": seeder_hwm}
        for variant in variants:
            good = ok(runs[variant])
            s[f"{variant}_wall"] = median_range([x["wall"] for x in good])
            s[f"{variant}_seconds"] = median_range([x["seconds"] for x in good])
            s[f"{variant}_cpu"] = median_range([x["cpu"] for x in good])
            s[f"{variant}_seeder_cpu"] = median_range([x["seeder_cpu"] for x in good])
            s[f"{variant}_failures"] = len(runs[variant]) - len(good)
        # Throughput ratio encrypted / plaintext = plaintext time / encrypted time, per
        # pair of runs made one after the other, so that a change of load between pairs
        # does not count.
        pairs = [(p, e) for p, e in zip(runs["plaintext"], runs["encrypted"]) if p["ok"] and e["ok"]]
        s["ratio_wall"] = median_range([p["wall"] / e["wall"] for p, e in pairs])
        s["ratio_seconds"] = median_range([p["seconds"] / e["seconds"] for p, e in pairs
                                           if p["seconds"] and e["seconds"]])
        self.results["scenarios"][key] = s

    # ------------------------------------------------------------ multi

    def aria2_once(self, host, urls, name, size, source, rundir, timeout=600):
        rundir.mkdir(parents=True, exist_ok=True)
        c = Proc(["aria2c", "--no-conf=true", "--console-log-level=warn", "--summary-interval=0",
                  "--download-result=hide", "--file-allocation=none", "--allow-overwrite=true",
                  "--auto-file-renaming=false", "--max-tries=3", "--timeout=30",
                  f"--split={len(urls)}", "--max-connection-per-server=1", "--min-split-size=1M",
                  "-d", rundir, "-o", name, *urls],
                 host=host, stdout=rundir / "stdout", stderr=rundir / "stderr")
        c.wait(timeout) or c.stop()
        problem = None if c.status == 0 else f"aria2c exit {c.status}: {c.stderr_tail()} {c.stdout_text()[-500:]}"
        problem = problem or self.verify_copy(rundir / name, source, size)
        return {"wall": c.elapsed, "ok": problem is None, "problem": problem,
                "cpu_pct": round(100 * c.cpu_seconds / c.elapsed, 1) if c.cpu_seconds is not None else None}

    def iperf_fanin_once(self, tb, senders, receiver, nbytes, rundir):
        """iperf3 -n nbytes from each sender host to the receiver at once (one stream
        each, released together): the transfer without any application, i.e. what TCP
        achieves through these tbf links. Servers on the receiver, ports 15301+."""
        rundir.mkdir(parents=True, exist_ok=True)
        servers = []
        try:
            for k, _ in enumerate(senders):
                servers.append(Proc(["iperf3", "-s", "-1", "-B", tb.addr(receiver), "-p", 15301 + k, "--forceflush"],
                                    host=tb.host(receiver), stdout=rundir / f"s{k}.out", stderr=rundir / f"s{k}.err"))
            for k, srv in enumerate(servers):
                if not wait_for_text(rundir / f"s{k}.out", "Server listening", 10, srv):
                    raise RuntimeError("iperf3 server did not start")
            rfd, wfd = os.pipe()
            clients = []
            try:
                for k, host in enumerate(senders):
                    clients.append(Proc(["iperf3", "-c", tb.addr(receiver), "-p", 15301 + k, "-n", nbytes, "-J"],
                                        host=tb.host(host), stdout=rundir / f"c{k}.json", stderr=rundir / f"c{k}.err",
                                        barrier_fd=rfd))
            finally:
                os.close(rfd)
            time.sleep(0.3)
            t0 = time.monotonic()
            os.close(wfd)
            deadline = t0 + 300
            while time.monotonic() < deadline and not all([c.poll() for c in clients]):
                time.sleep(0.005)
            for c in clients:
                c.stop()
            ok = all(c.status == 0 for c in clients)
            last = max(c.t_end for c in clients if c.t_end) - t0
            rates = []
            for c in clients:
                try:
                    rates.append(json.loads(c.stdout_text())["end"]["sum_received"]["bits_per_second"])
                except (ValueError, KeyError):
                    ok = False
            return {"wall": last, "ok": ok, "problem": None if ok else "iperf3 failed",
                    "mbps_each": [round(x / 1e6, 2) for x in rates]}
        finally:
            for srv in servers:
                srv.stop()

    def scenario_multi(self):
        size = self.size(256 * MiB, 32 * MiB)
        name = "multi.bin"
        base = self.work / "multi"
        source = self.data_file(size)
        log(f"== multi source: 4 seeders at 100mbit, {size / MiB:.0f} MiB, {self.runs} run(s)")
        procs, tb = [], None
        try:
            tb = Testbed("bchm", 5, rate="100mbit")
            tb.rate(5, "none")
            seeders = []
            for i in range(1, 5):
                share = base / f"share{i}"
                self.share_with(share, name, size)
                s = self.start_seeder(tb.host(i), "eth0", 47620, base / f"seeder{i}", share)
                seeders.append(s)
                procs.append(s)
            self.await_ready(seeders)
            for i in range(1, 5):
                procs.append(self.start_nginx(tb.host(i), tb.addr(i), 18080, base / f"share{i}", base / f"nginx{i}"))
            urls = [f"http://{tb.addr(i)}:18080/{name}" for i in range(1, 5)]
            torrent = None
            if bittorrent_available():
                torrent = self.make_torrent(base / "share1" / name, base / "bt")
                for i in range(1, 5):
                    procs.append(self.start_bt_seeder(tb, i, base / f"share{i}", torrent, base / f"bt-seeder{i}"))
            else:
                self.results["notes"].append("multi: no BitTorrent reference (python3-libtorrent not importable)")
            runs = {"p2p": [], "aria2c": [], "iperf3": [], "bittorrent": []}
            for r in range(self.runs):
                rd = base / f"run{r}"
                self.meter_start()
                res = self.iperf_fanin_once(tb, [1, 2, 3, 4], 5, size // 4, rd / "iperf")
                runs["iperf3"].append(res)
                self.record("multi", "4x100mbit", "iperf3 4 streams", r, res["wall"], res["ok"],
                            mbps_each=res["mbps_each"])
                self.cleanup_dir(rd)
                self.meter_start(warm=size)
                res = self.p2p_get_once(tb.host(5), "eth0", 47620, name, size, source, rd / "p2p", seeders)
                runs["p2p"].append(res)
                self.record("multi", "4x100mbit", "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                            from_peers=res["bytes_from_peers"])
                self.cleanup_dir(rd)
                self.meter_start(warm=size)
                res = self.aria2_once(tb.host(5), urls, name, size, source, rd / "aria2")
                runs["aria2c"].append(res)
                self.record("multi", "4x100mbit", "aria2c", r, res["wall"], res["ok"])
                self.cleanup_dir(rd)
                if torrent:
                    self.meter_start(warm=size)
                    res = self.bt_crowd_once(tb, [5], range(1, 5), torrent, name, size, source, rd / "bittorrent", 600)
                    runs["bittorrent"].append(res)
                    self.record("multi", "4x100mbit", "bittorrent", r, res["last"] if res["ok"] else "failed",
                                res["ok"])
                    self.cleanup_dir(rd)
        finally:
            for p in reversed(procs):
                p.stop()
            if tb:
                tb.down()
        ok = lambda xs: [x for x in xs if x["ok"]]
        bits = size * 8
        self.results["scenarios"]["multi"] = {
            "size": size, "runs": runs,
            "p2p_wall": median_range([x["wall"] for x in ok(runs["p2p"])]),
            "p2p_seconds": median_range([x["seconds"] for x in ok(runs["p2p"])]),
            "aria2c": median_range([x["wall"] for x in ok(runs["aria2c"])]),
            "iperf3": median_range([x["wall"] for x in ok(runs["iperf3"])]),
            "bound_payload": bits / (4 * PAYLOAD_BPS),
            "bound_nominal": bits / (4 * NOMINAL_BPS),
            "p2p_failures": len(runs["p2p"]) - len(ok(runs["p2p"])),
            "aria2c_failures": len(runs["aria2c"]) - len(ok(runs["aria2c"])),
            "bittorrent": median_range([x["last"] for x in ok(runs["bittorrent"])]) if torrent else None,
            "bittorrent_failures": len(runs["bittorrent"]) - len(ok(runs["bittorrent"])),
        }

    # ------------------------------------------------------------ flash

    @staticmethod
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

    def await_reports(self, procs, t0, deadline):
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
                    rep = None if empty else self.parse_json_line(g.stdout_text())
                    if rep is not None:
                        done[k] = time.monotonic() - t0
                        reports[k] = rep
                    elif g.poll():
                        done[k] = float("nan")
            time.sleep(0.02)
        return done, reports

    def crowd_problems(self, procs, reports, paths, source, size, rundir):
        """Stops a crowd's processes and checks each one's copy (`paths[k]`, or the `path` of
        its report). Returns what went wrong; keeps the failed ones' output."""
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
                p = self.verify_copy(paths[k] or reports[k]["path"], source, size)
                if p:
                    problems.append(f"{who}: {p}")
        if problems:
            log("      " + "\n      ".join(problems))
            keep = self.out / "failed" / f"{rundir.parent.name}-{rundir.name}"
            for g in procs:
                d = Path(g.stdout_path).parent
                (keep / d.name).mkdir(parents=True, exist_ok=True)
                for f in (g.stdout_path, g.stderr_path):
                    if Path(f).exists():
                        shutil.copy(f, keep / d.name / Path(f).name)
        return problems

    def flash_p2p_once(self, tb, n, name, size, source, rundir, timeout):
        """N `get --seed --json` released together; done = the JSON line (verified file)."""
        def get(k, barrier):
            d = rundir / f"d{k + 2}"
            argv = self.p2p_argv("get", "eth0", 47630, d, extra=(name, "--json", "--seed", "--timeout", timeout))
            return Proc(argv, host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
        gets, t0 = self.start_together(lambda barrier: [get(k, barrier) for k in range(n)])
        done, reports = self.await_reports(gets, t0, t0 + timeout + 30)
        hwm = [proc_status(g.pid, "VmHWM") for g in gets]
        problems = self.crowd_problems(gets, reports, [None] * n, source, size, rundir)
        times = [t for t in done if t is not None and t == t]
        # How much the seeder uploaded: its short id from a downloader's "peer joined" log line.
        seeder_bytes = None
        for g in gets:
            m = re.search(r"peer\.address=198\.18\.0\.1:\d+.*remote\.peer\.id=([0-9a-f]+).*peer joined|"
                          r"remote\.peer\.id=([0-9a-f]+).*peer\.address=198\.18\.0\.1:\d+.*peer joined",
                          Path(g.stderr_path).read_text(errors="replace"))
            if m:
                short = m.group(1) or m.group(2)
                seeder_bytes = sum(v for r in reports if r for k, v in (r.get("bytesFromPeers") or {}).items()
                                   if k.startswith(short))
                break
        return {"last": max(times) if times and not problems else None, "times": sorted(times),
                "seeder_upload_factor": seeder_bytes / size if seeder_bytes is not None else None,
                "bytes_from_peers": [r.get("bytesFromPeers") if r else None for r in reports],
                "seconds": [r.get("seconds") if r else None for r in reports],
                "ok": not problems, "problem": "; ".join(problems) or None,
                "vmhwm_kib": hwm}

    def make_torrent(self, path, base):
        """A torrent of `path` for the BitTorrent reference: 256 KiB pieces, as p2p's chunks."""
        base.mkdir(parents=True, exist_ok=True)
        torrent = base / f"{path.name}.torrent"
        run(["/usr/bin/python3", BT, "torrent", path, torrent, "--piece-length", 256 * 1024], timeout=600)
        return torrent

    def start_bt_seeder(self, tb, i, share, torrent, base):
        """A libtorrent peer on testbed host `i` seeding `torrent` from `share`, returned once
        it has hashed its copy. Its `stats_path` has what it has uploaded so far."""
        base.mkdir(parents=True, exist_ok=True)
        seeder = Proc(["/usr/bin/python3", BT, "seed", torrent, "--save", share,
                       "--listen", f"{tb.addr(i)}:{BT_PORT}", "--timeout", 4 * 3600, "--stats", base / "stats.json"],
                      host=tb.host(i), stdout=base / "stdout", stderr=base / "stderr")
        seeder.stats_path = base / "stats.json"
        if not wait_for_text(base / "stdout", "ready", 300, seeder):
            seeder.stop()
            raise RuntimeError(f"BitTorrent seeder on host {i} not ready: {seeder.stderr_tail(5)}")
        return seeder

    @staticmethod
    def bt_uploaded(seeder):
        """What a BitTorrent seeder has uploaded so far (payload bytes), or None."""
        try:
            return json.loads(Path(seeder.stats_path).read_text())["uploaded"]
        except (OSError, ValueError, KeyError):
            return None

    def bt_crowd_once(self, tb, downloaders, peers, torrent, name, size, source, rundir, timeout, seeder=None):
        """libtorrent downloaders on testbed hosts `downloaders`, released together, each given
        the address of every host in `peers` but its own (there is no tracker); done = its
        JSON line (every piece hash-checked). With `seeder`, also what it uploaded, per F."""
        uploaded_before = self.bt_uploaded(seeder) if seeder else None
        def get(i, barrier):
            d = rundir / f"b{i}"
            d.mkdir(parents=True, exist_ok=True)
            argv = ["/usr/bin/python3", BT, "get", torrent, "--save", d,
                    "--listen", f"{tb.addr(i)}:{BT_PORT}", "--timeout", timeout]
            for j in peers:
                if j != i:
                    argv += ["--peer", f"{tb.addr(j)}:{BT_PORT}"]
            return Proc(argv, host=tb.host(i), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
        gets, t0 = self.start_together(lambda barrier: [get(i, barrier) for i in downloaders])
        done, reports = self.await_reports(gets, t0, t0 + timeout + 30)
        paths = [rundir / f"b{i}" / name for i in downloaders]
        problems = self.crowd_problems(gets, reports, paths, source, size, rundir)
        times = sorted(t for t in done if t is not None and t == t)
        factor = None
        if uploaded_before is not None:
            time.sleep(0.5)  # the seeder's stats file is at most 0.2 s old
            after = self.bt_uploaded(seeder)
            factor = (after - uploaded_before) / size if after is not None else None
        return {"last": max(times) if times and not problems else None, "times": times,
                "seeder_upload_factor": factor, "ok": not problems, "problem": "; ".join(problems) or None}

    def flash_curl_once(self, tb, n, url, size, source, rundir, timeout):
        """The N downloaders `curl` the file from the seeder's nginx, released together."""
        def fetch(k, barrier):
            d = rundir / f"c{k + 2}"
            d.mkdir(parents=True, exist_ok=True)
            return Proc(["curl", "-sS", "--fail", "--max-time", timeout, "-o", d / "file", url],
                        host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
        cs, t0 = self.start_together(lambda barrier: [fetch(k, barrier) for k in range(n)])
        deadline = t0 + timeout + 30
        while time.monotonic() < deadline and not all([c.poll() for c in cs]):
            time.sleep(0.005)
        for c in cs:
            c.stop()
        problems = []
        for k, c in enumerate(cs):
            p = None if c.status == 0 else f"exit {c.status}"
            p = p or self.verify_copy(rundir / f"c{k + 2}" / "file", source, size)
            if p:
                problems.append(f"curl {k + 2}: {p}")
        times = sorted(c.t_end - t0 for c in cs if c.t_end is not None)
        return {"last": max(times) if times and not problems else None, "times": times,
                "ok": not problems, "problem": "; ".join(problems) or None}

    def scenario_flash(self):
        size = self.size(128 * MiB, 16 * MiB)
        ns = self.args.flash_n or ([4] if self.quick else [8, 15])
        name = "flash.bin"
        base = self.work / "flash"
        source = self.data_file(size)
        log(f"== flash crowd: 1 seeder + N = {ns} downloaders, every host 100mbit, {size / MiB:.0f} MiB, "
            f"{self.runs} run(s)")
        procs, tb = [], None
        out = {}
        try:
            tb = Testbed("bchf", max(ns) + 1, rate="100mbit")
            share = base / "share"
            self.share_with(share, name, size)
            seeder = self.start_seeder(tb.host(1), "eth0", 47630, base / "seeder", share)
            procs.append(seeder)
            self.await_ready([seeder])
            nginx = self.start_nginx(tb.host(1), tb.addr(1), 18080, share, base / "nginx")
            procs.append(nginx)
            url = f"http://{tb.addr(1)}:18080/{name}"
            torrent = None
            if bittorrent_available():
                torrent = self.make_torrent(share / name, base / "bt")
                bt_seeder = self.start_bt_seeder(tb, 1, share, torrent, base / "bt-seeder")
                procs.append(bt_seeder)
            else:
                self.results["notes"].append("flash: no BitTorrent reference (python3-libtorrent not importable)")
            # What one TCP stream achieves through the seeder's 100mbit uplink for F bytes.
            self.meter_start()
            cal = self.iperf_fanin_once(tb, [1], 2, size, base / "iperf-cal")
            self.record("flash", "calibration", "iperf3 1 stream", 0, cal["wall"], cal["ok"], mbps=cal["mbps_each"])
            out["iperf3_one_uplink"] = cal
            for n in ns:
                bits = size * 8
                kr = lambda u: max(bits / u, n * bits / (u + n * u))
                cs_bound = n * bits / PAYLOAD_BPS
                timeout = int(max(120, 12 * kr(PAYLOAD_BPS)))
                cs_timeout = int(max(120, 3 * cs_bound))
                runs = {"p2p": [], "curl": [], "bittorrent": []}
                for r in range(self.runs):
                    rd = base / f"n{n}-run{r}"
                    self.meter_start(warm=n * size)
                    res = self.flash_p2p_once(tb, n, name, size, source, rd / "p2p", timeout)
                    runs["p2p"].append(res)
                    self.record("flash", f"N={n}", "p2p", r, res["last"] if res["ok"] else "failed", res["ok"],
                                times=res["times"], seeder_upload_factor=res["seeder_upload_factor"])
                    self.cleanup_dir(rd)
                    time.sleep(1)
                    self.meter_start(warm=n * size)
                    res = self.flash_curl_once(tb, n, url, size, source, rd / "curl", cs_timeout)
                    runs["curl"].append(res)
                    self.record("flash", f"N={n}", "curl", r, res["last"] if res["ok"] else "failed", res["ok"],
                                times=res["times"])
                    self.cleanup_dir(rd)
                    if torrent:
                        time.sleep(1)
                        self.meter_start(warm=n * size)
                        res = self.bt_crowd_once(tb, range(2, n + 2), range(1, n + 2), torrent, name, size, source,
                                                 rd / "bittorrent", timeout, seeder=bt_seeder)
                        runs["bittorrent"].append(res)
                        self.record("flash", f"N={n}", "bittorrent", r, res["last"] if res["ok"] else "failed",
                                    res["ok"], times=res["times"], seeder_upload_factor=res["seeder_upload_factor"])
                        self.cleanup_dir(rd)
                ok = lambda xs: [x for x in xs if x["ok"]]
                out[str(n)] = {
                    "n": n, "size": size, "runs": runs,
                    "p2p": median_range([x["last"] for x in ok(runs["p2p"])]),
                    "curl": median_range([x["last"] for x in ok(runs["curl"])]),
                    "bittorrent": median_range([x["last"] for x in ok(runs["bittorrent"])]) if torrent else None,
                    "bittorrent_failures": len(runs["bittorrent"]) - len(ok(runs["bittorrent"])),
                    "bittorrent_seeder_upload_factor": median_range(
                        [x.get("seeder_upload_factor") for x in ok(runs["bittorrent"])]),
                    "bound_payload": kr(PAYLOAD_BPS), "bound_nominal": kr(NOMINAL_BPS),
                    "client_server_bound_payload": cs_bound,
                    "p2p_failures": len(runs["p2p"]) - len(ok(runs["p2p"])),
                    "curl_failures": len(runs["curl"]) - len(ok(runs["curl"])),
                    "seeder_upload_factor": median_range([x.get("seeder_upload_factor") for x in ok(runs["p2p"])]),
                    "downloader_vmhwm_kib": median_range([max(h for h in x["vmhwm_kib"] if h) for x in runs["p2p"]
                                                          if any(x["vmhwm_kib"])]),
                }
            out["seeder_vmhwm_kib"] = proc_status(seeder.pid, "VmHWM")
        finally:
            for p in reversed(procs):
                p.stop()
            if tb:
                tb.down()
        self.results["scenarios"]["flash"] = out

    # ------------------------------------------------------------ memory

    def scenario_memory(self):
        want = self.size(4 * GiB, 256 * MiB)
        size = want
        free = shutil.disk_usage(self.work).free
        have = self.data.joinpath(f"random-{size}.bin").exists()
        need = size * (1 if have else 2) + 2 * GiB
        while free < need and size > 64 * MiB:
            size //= 2
            need = size * 2 + 2 * GiB
        if size != want:
            self.results["notes"].append(f"memory: only {free / GiB:.1f} GiB free: used {size / MiB:.0f} MiB "
                                         f"instead of {want / MiB:.0f} MiB")
        name = "memory.bin"
        base = self.work / "memory"
        source = self.data_file(size)
        log(f"== memory: peak RSS of a downloader ({size / MiB:.0f} MiB, loopback) and of a seeder serving 8 peers "
            f"(disk free {free / GiB:.1f} GiB)")
        share = base / "share"
        self.share_with(share, name, size)
        res = {"download_size": size}
        procs = []
        try:
            seeder = self.start_seeder(None, "lo", 47640, base / "seeder", share)
            procs.append(seeder)
            self.await_ready([seeder])
            rd = base / "get"
            argv = self.p2p_argv("get", "lo", 47640, rd, extra=(name, "--json", "--seed", "--timeout", 1800))
            g = Proc(argv, stdout=rd / "stdout", stderr=rd / "stderr")
            procs.append(g)
            peak_rss = 0
            deadline = time.monotonic() + 1900
            report = None
            while time.monotonic() < deadline and not g.poll():
                report = self.parse_json_line(g.stdout_text())
                if report:
                    break
                peak_rss = max(peak_rss, proc_status(g.pid, "VmRSS") or 0)
                time.sleep(0.1)
            hwm = proc_status(g.pid, "VmHWM")
            g.stop(grace=10)
            problem = None if report else f"no report (exit {g.status}): {g.stderr_tail()}"
            problem = problem or self.verify_copy(report["path"], source, size)
            res["downloader"] = {"vmhwm_kib": hwm, "ru_maxrss_kib": g.maxrss_kib, "sampled_max_vmrss_kib": peak_rss,
                                 "seconds": (report or {}).get("seconds"), "ok": problem is None, "problem": problem}
            res["seeder_single"] = {"vmhwm_kib": proc_status(seeder.pid, "VmHWM")}
            self.record("memory", f"get {size // MiB} MiB", "p2p VmHWM", 0,
                        f"{(hwm or 0) / 1024:.1f} MiB", problem is None)
        finally:
            for p in reversed(procs):
                p.stop()
            self.cleanup_dir(base / "get")

        # A seeder serving 8 peers at once (unlimited links).
        size8 = self.size(256 * MiB, 32 * MiB)
        source8 = self.data_file(size8)
        share8 = base / "share8"
        self.share_with(share8, "serve8.bin", size8)
        procs, tb = [], None
        try:
            tb = Testbed("bchr", 9)
            seeder = self.start_seeder(tb.host(1), "eth0", 47641, base / "seeder8", share8)
            procs.append(seeder)
            self.await_ready([seeder])
            hwm_ready = proc_status(seeder.pid, "VmHWM")
            rfd, wfd = os.pipe()
            gets = []
            try:
                for k in range(8):
                    d = base / "serve8" / f"d{k + 2}"
                    argv = self.p2p_argv("get", "eth0", 47641, d, extra=("serve8.bin", "--json", "--timeout", 900))
                    gets.append(Proc(argv, host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr",
                                     barrier_fd=rfd))
            finally:
                os.close(rfd)
            time.sleep(0.3)
            t0 = time.monotonic()
            os.close(wfd)
            peak = 0
            deadline = t0 + 960
            while time.monotonic() < deadline and not all([g.poll() for g in gets]):
                peak = max(peak, proc_status(seeder.pid, "VmRSS") or 0)
                time.sleep(0.05)
            for g in gets:
                g.stop()
            hwm8 = proc_status(seeder.pid, "VmHWM")
            okc = sum(1 for g in gets if g.status == 0)
            res["seeder_serving_8"] = {"vmhwm_kib": hwm8, "vmhwm_after_start_kib": hwm_ready,
                                       "sampled_max_vmrss_kib": peak, "size": size8, "downloads_ok": okc,
                                       "seconds": time.monotonic() - t0,
                                       "downloader_maxrss_kib": [g.maxrss_kib for g in gets]}
            self.record("memory", f"seeder, 8 peers", "p2p VmHWM", 0, f"{(hwm8 or 0) / 1024:.1f} MiB", okc == 8)
        finally:
            for p in reversed(procs):
                p.stop()
            if tb:
                tb.down()
            self.cleanup_dir(base / "serve8")
        self.results["scenarios"]["memory"] = res

    # ------------------------------------------------------------ discovery

    def scenario_discovery(self):
        trials = self.args.trials or (5 if self.quick else 50)
        base = self.work / "discovery"
        log(f"== discovery on loopback: {trials} trials of join, stop (SIGTERM), kill (SIGKILL); "
            f"announce interval {self.args.announce_interval} s")
        disc = 47650
        interval = str(self.args.announce_interval)
        obs_argv = self.p2p_argv("shell", "lo", disc, base / "observer",
                                 extra=()) + ["--announce-interval", interval]
        proc = Proc(obs_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=base / "observer.stderr")
        obs = proc.popen
        buf = b""

        def readline(timeout):
            nonlocal buf
            deadline = time.monotonic() + timeout
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                r, _, _ = select.select([obs.stdout], [], [], left)
                if r:
                    chunk = os.read(obs.stdout.fileno(), 65536)
                    if not chunk:
                        return None
                    buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line.decode(errors="replace")

        def peers():
            obs.stdin.write(b"peers --json\n")
            obs.stdin.flush()
            for _ in range(20):
                line = readline(2.0)
                if line is None:
                    raise RuntimeError("observer shell stopped answering")
                if line.lstrip().startswith("["):
                    return {p["id"] for p in json.loads(line)}
            raise RuntimeError("observer shell: no JSON answer")

        def wait_until(pred, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                ids = peers()
                if pred(ids):
                    return time.monotonic(), ids
                time.sleep(0.02)
            return None, None

        join, stop, kill, failures = [], [], [], []
        import random
        rng = random.Random(4)
        try:
            if readline(30) is None:
                raise RuntimeError("observer shell did not start")
            time.sleep(1.0)
            for t in range(trials):
                for how in ("stop", "kill"):
                    before = peers()
                    d = base / f"t{t}-{how}"
                    subj = Proc(self.p2p_argv("serve", "lo", disc, d) + ["--announce-interval", interval],
                                stdout=d / "stdout", stderr=d / "stderr")
                    t_join, ids = wait_until(lambda ids: bool(ids - before), 5.0)
                    if t_join is None:
                        failures.append(f"trial {t}: join not seen within 5 s")
                        subj.stop()
                        continue
                    join.append(t_join - subj.t_start)
                    new = ids - before
                    # Signal at a random phase of the subject's announce cycle (a kill is
                    # detected 2 to 3 intervals after the last "alive" heard).
                    time.sleep(0.3 if how == "stop" else rng.uniform(0.3, 0.3 + float(interval)))
                    t_sig = time.monotonic()
                    subj.send(signal.SIGTERM if how == "stop" else signal.SIGKILL)
                    limit = 5.0 if how == "stop" else 4 * float(interval) + 2
                    t_gone, _ = wait_until(lambda ids: not (new & ids), limit)
                    if t_gone is None:
                        failures.append(f"trial {t}: {how} not seen within {limit} s")
                    else:
                        (stop if how == "stop" else kill).append(t_gone - t_sig)
                    subj.stop()
                    shutil.rmtree(d, ignore_errors=True)
                log(f"    trial {t}: join {join[-1] if join else float('nan'):.3f} s, "
                    f"stop {stop[-1] if stop else float('nan'):.3f} s, kill {kill[-1] if kill else float('nan'):.3f} s")
        finally:
            try:
                obs.stdin.write(b"exit\n")
                obs.stdin.flush()
                obs.stdin.close()
            except OSError:
                pass
            proc.wait(10) or proc.stop()

        def dist(xs):
            if not xs:
                return None
            xs = sorted(xs)
            q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
            return {"n": len(xs), "min": xs[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": xs[-1],
                    "samples": xs}

        self.results["scenarios"]["discovery"] = {
            "trials": trials, "announce_interval": float(interval), "poll_ms": 20,
            "join": dist(join), "stop": dist(stop), "kill": dist(kill), "failures": failures,
        }
        for f in failures:
            log(f"    {f}")

    # ------------------------------------------------------------ micro

    def scenario_micro(self):
        exe = REPO / ".build-release" / "release" / "p2p-microbench"
        if "p2p-microbench" not in (REPO / "Package.swift").read_text() or not exe.exists():
            note = "micro: no p2p-microbench product in this tree (skipped)"
            log(f"== {note}")
            self.results["scenarios"]["micro"] = {"skipped": note}
            return
        log("== micro: p2p-microbench")
        r = run([exe], timeout=1200, check=False)
        self.results["scenarios"]["micro"] = {"exit": r.returncode, "output": r.stdout + r.stderr}
        log(r.stdout)

    # ------------------------------------------------------------ machine

    def machine(self):
        cpu = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", cpu)
        flags = set((re.search(r"flags\s*:\s*(.*)", cpu) or ["", ""])[1].split())
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())

        def ver(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
                return (r.stdout + r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return None

        git = lambda *a: (subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True).stdout.strip())
        self.results["meta"] = {
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": self.quick, "runs": self.runs,
            "cores": os.cpu_count(), "cpu": model.group(1) if model else platform.processor(),
            "cpu_flags": sorted(flags & {"sha_ni", "aes", "vaes", "avx2", "avx512f", "pclmulqdq", "vpclmulqdq"}),
            "memory_gib": round(int(mem.group(1)) / (1 << 20), 1) if mem else None,
            "kernel": platform.release(),
            "tcp_congestion_control": Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip(),
            "git_commit": git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "p2p": str(self.p2p),
            "versions": {
                "swift": ver(["swift", "--version"]), "nginx": ver(["nginx", "-v"]), "curl": ver(["curl", "--version"]),
                "iperf3": ver(["iperf3", "--version"]), "aria2c": ver(["aria2c", "--version"]),
                "libtorrent": ver(["/usr/bin/python3", "-c", "import libtorrent; print(libtorrent.__version__)"]),
            },
        }

    # ------------------------------------------------------------ output

    def save(self):
        self.results["rows"] = self.tsv
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1, default=str))
        cols = ["scenario", "variant", "tool", "run", "seconds", "ok"]
        with open(self.out / "runs.tsv", "w") as f:
            f.write("\t".join(cols + ["extra"]) + "\n")
            for row in self.tsv:
                extra = {k: v for k, v in row.items() if k not in cols}
                f.write("\t".join(str(row[c]) for c in cols) + "\t" + json.dumps(extra, default=str) + "\n")

    def summary(self):
        return summarize(self.results)

    def plot(self):
        fl = self.results["scenarios"].get("flash")
        if not fl:
            return None
        path = self.out / "flash.png"
        try:
            plot_flash(fl, path)
        except Exception as e:  # matplotlib missing or failing: the numbers still stand
            self.results["notes"].append(f"plot not drawn: {e}")
            return None
        return path


# ---------------------------------------------------------------- report

def fmt_mr(m, unit="s", digits=2, scale=1.0):
    """median (min–max) of a median_range dict."""
    if not m:
        return "—"
    u = f" {unit}" if unit else ""
    med = f"{m['median'] * scale:.{digits}f}{u}"
    if m["n"] == 1:
        return med
    return f"{med} ({m['min'] * scale:.{digits}f}–{m['max'] * scale:.{digits}f})"


def ratio(a, b):
    if not a or not b:
        return "—"
    x = a["median"] if isinstance(a, dict) else a
    y = b["median"] if isinstance(b, dict) else b
    return f"{x / y:.2f}×"


def mbps(size, m):
    return f"{size / m['median'] / 1e6:.0f} MB/s" if m else "—"


def fail_note(n, what):
    return f" **{n} {what} failed**" if n else ""


def load_note(results, scenario, variant=None):
    """Other processes' CPU before the runs of a scenario (cores busy), to flag noisy figures."""
    rows = [r for r in results.get("rows", []) if r["scenario"] == scenario
            and (variant is None or r["variant"] == variant) and r.get("bg_cores_before") is not None]
    if not rows:
        return "—"
    bg = [r["bg_cores_before"] for r in rows]
    busy = [r["busy_cores_during"] for r in rows if r.get("busy_cores_during") is not None]
    text = f"{statistics.median(bg):.1f} (max {max(bg):.1f})"
    if busy:
        text += f"; during {statistics.median(busy):.1f} of {os.cpu_count()}"
    return text


def summarize(results):
    sc = results["scenarios"]
    lines = ["| scenario | p2p | reference | ratio | target | other load before runs, cores busy |",
             "|---|---|---|---|---|---|"]
    for where in ("testbed", "loopback"):
        s = sc.get(f"single-{where}")
        if not s:
            continue
        size = s["size"]
        lbl = f"single source, {where}, {size / MiB:.0f} MiB, to disk"
        p2p = (f"{fmt_mr(s['p2p_wall'])} = {mbps(size, s['p2p_wall'])} (get's own `seconds`: "
               f"{fmt_mr(s['p2p_seconds'])}); CPU get {fmt_mr(s['p2p_cpu_pct'], '%', 0)}, seeder "
               f"{fmt_mr(s['seeder_cpu_pct'], '%', 0)}{fail_note(s['p2p_failures'], 'runs')}")
        ref = (f"curl from nginx {fmt_mr(s['curl'])} = {mbps(size, s['curl'])} (CPU curl "
               f"{fmt_mr(s['curl_cpu_pct'], '%', 0)}, nginx {fmt_mr(s['nginx_cpu_pct'], '%', 0)}); "
               f"iperf3 1 stream {fmt_mr(s['iperf3'])} = {mbps(size, s['iperf3'])}{fail_note(s['curl_failures'], 'curl runs')}")
        rat = f"{ratio(s['p2p_wall'], s['curl'])} curl; {ratio(s['p2p_wall'], s['iperf3'])} iperf3"
        lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.00× curl | {load_note(results, f'single-{where}')} |")
    e = sc.get("encrypted")
    if e:
        size = e["size"]
        lbl = f"encrypted (`--secret`) vs plaintext, loopback, {size / MiB:.0f} MiB, to disk"
        def side(v):
            return (f"{fmt_mr(e[f'{v}_wall'])} = {mbps(size, e[f'{v}_wall'])} (`seconds`: "
                    f"{fmt_mr(e[f'{v}_seconds'])}); CPU get "
                    f"{fmt_mr(e[f'{v}_cpu'])}, seeder {fmt_mr(e[f'{v}_seeder_cpu'])}"
                    f"{fail_note(e[f'{v}_failures'], 'runs')}")
        enc = side("encrypted")
        plain = "plaintext " + side("plaintext")
        rat = (f"throughput {fmt_mr(e['ratio_wall'], '×')} of plaintext (`seconds`: "
               f"{fmt_mr(e['ratio_seconds'], '×')}), per pair of runs")
        lines.append(f"| {lbl} | {enc} | {plain} | {rat} | ≥ 0.70× plaintext | {load_note(results, 'encrypted')} |")
    m = sc.get("multi")
    if m:
        lbl = f"multi source, 4 × 100 Mbit/s, {m['size'] / MiB:.0f} MiB"
        p2p = f"{fmt_mr(m['p2p_wall'])} (`seconds`: {fmt_mr(m['p2p_seconds'])}){fail_note(m['p2p_failures'], 'runs')}"
        ref = (f"bound {m['bound_payload']:.2f} s payload / {m['bound_nominal']:.2f} s nominal; aria2c 4 mirrors "
               f"{fmt_mr(m['aria2c'])} ({ratio(m['aria2c'], m['bound_payload'])} payload bound)"
               + (f"; iperf3, 4 hosts × F/4 at once {fmt_mr(m['iperf3'])} ({ratio(m['iperf3'], m['bound_payload'])})"
                  if m.get("iperf3") else "")
               + f"{fail_note(m['aria2c_failures'], 'aria2c runs')}")
        if m.get("bittorrent"):
            ref += (f"; BitTorrent (libtorrent, 4 seeders) {fmt_mr(m['bittorrent'])} "
                    f"({ratio(m['bittorrent'], m['bound_payload'])} payload bound)"
                    f"{fail_note(m['bittorrent_failures'], 'BitTorrent runs')}")
        rat = (f"{ratio(m['p2p_wall'], m['bound_payload'])} payload, {ratio(m['p2p_wall'], m['bound_nominal'])} "
               f"nominal; {ratio(m['p2p_wall'], m['aria2c'])} aria2c"
               + (f"; {ratio(m['p2p_wall'], m['bittorrent'])} BitTorrent" if m.get("bittorrent") else ""))
        lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.015× payload | {load_note(results, 'multi')} |")
    fl = sc.get("flash")
    if fl:
        for key in sorted((k for k in fl if k.isdigit()), key=int):
            f = fl[key]
            lbl = f"flash crowd, 1 + {f['n']}, 100 Mbit/s each, {f['size'] / MiB:.0f} MiB, last done"
            p2p = f"{fmt_mr(f['p2p'])}{fail_note(f['p2p_failures'], 'runs')}"
            if f.get("seeder_upload_factor"):
                p2p += f"; seeder uploaded {fmt_mr(f['seeder_upload_factor'], '', 2)} × F"
            ref = (f"Kumar–Ross bound {f['bound_payload']:.2f} s payload / {f['bound_nominal']:.2f} s nominal; "
                   f"all curl from one nginx {fmt_mr(f['curl'])} ({ratio(f['curl'], f['bound_payload'])} bound)"
                   f"{fail_note(f['curl_failures'], 'curl runs')}")
            cal = fl.get("iperf3_one_uplink")
            if cal and cal.get("ok"):
                ref += (f"; iperf3, F through one uplink: {cal['wall']:.2f} s "
                        f"({cal['mbps_each'][0] if cal['mbps_each'] else 0:.1f} Mbit/s)")
            if f.get("bittorrent"):
                ref += (f"; BitTorrent (libtorrent, 256 KiB pieces) {fmt_mr(f['bittorrent'])} "
                        f"({ratio(f['bittorrent'], f['bound_payload'])} bound"
                        + (f", seeder uploaded {fmt_mr(f['bittorrent_seeder_upload_factor'], '', 2)} × F"
                           if f.get("bittorrent_seeder_upload_factor") else "") + ")"
                        f"{fail_note(f['bittorrent_failures'], 'BitTorrent runs')}")
            rat = (f"{ratio(f['p2p'], f['bound_payload'])} payload, {ratio(f['p2p'], f['bound_nominal'])} nominal; "
                   f"{ratio(f['p2p'], f['curl'])} curl"
                   + (f"; {ratio(f['p2p'], f['bittorrent'])} BitTorrent" if f.get("bittorrent") else ""))
            lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.10× payload | {load_note(results, 'flash', f'N={key}')} |")
    mem = sc.get("memory")
    if mem:
        d = mem.get("downloader") or {}
        hwm = d.get("vmhwm_kib")
        lines.append(f"| memory: peak RSS (VmHWM) downloading {mem['download_size'] / MiB:.0f} MiB | "
                     f"{(hwm or 0) / 1024:.1f} MiB{'' if d.get('ok') else ' **download failed**'} "
                     f"(seeder: {(mem.get('seeder_single', {}).get('vmhwm_kib') or 0) / 1024:.1f} MiB) | 64 MiB target | "
                     f"{(hwm or 0) / RSS_TARGET_KIB:.2f}× target | < 64 MiB | |")
        s8 = mem.get("seeder_serving_8") or {}
        if s8:
            lines.append(f"| memory: peak RSS of a seeder serving 8 peers ({s8['size'] / MiB:.0f} MiB, unlimited) | "
                         f"{(s8.get('vmhwm_kib') or 0) / 1024:.1f} MiB (after start: "
                         f"{(s8.get('vmhwm_after_start_kib') or 0) / 1024:.1f} MiB; {s8['downloads_ok']}/8 downloads ok)"
                         f" | 64 MiB | {(s8.get('vmhwm_kib') or 0) / RSS_TARGET_KIB:.2f}× | < 64 MiB | |")
    if fl and fl.get("seeder_vmhwm_kib"):
        lines.append(f"| memory: peak RSS of the flash-crowd seeder | {fl['seeder_vmhwm_kib'] / 1024:.1f} MiB | 64 MiB | "
                     f"{fl['seeder_vmhwm_kib'] / RSS_TARGET_KIB:.2f}× | < 64 MiB | |")
    di = sc.get("discovery")
    if di:
        iv = di["announce_interval"]
        targets = {"join": (1.0, "≤ 1 s"), "stop": (0.5, "≤ 0.5 s"), "kill": (3 * iv, f"≤ 3 intervals = {3 * iv:g} s")}
        for k in ("join", "stop", "kill"):
            d = di.get(k)
            if not d:
                lines.append(f"| discovery {k} | no samples | | | {targets[k][1]} | |")
                continue
            lines.append(f"| discovery: {k} latency, loopback, {d['n']} samples (poll 20 ms) | "
                         f"p50 {d['p50']:.3f} s, p90 {d['p90']:.3f} s, max {d['max']:.3f} s (min {d['min']:.3f}) | "
                         f"target {targets[k][0]:g} s | max {d['max'] / targets[k][0]:.2f}× target | {targets[k][1]} | |")
        if di["failures"]:
            lines.append(f"| discovery failures | {len(di['failures'])}: {'; '.join(di['failures'][:3])} | | | 0 | |")
    mi = sc.get("micro")
    if mi:
        if "skipped" in mi:
            lines.append(f"| micro | skipped: no `p2p-microbench` product in the tree | | | | |")
        else:
            lines.append(f"| micro | see output below | | | | |")
    out = "\n".join(lines)
    if mi and "output" in mi:
        out += "\n\nmicro (`p2p-microbench`):\n\n```\n" + mi["output"].strip() + "\n```"
    if results.get("notes"):
        out += "\n\nnotes:\n" + "\n".join(f"- {n}" for n in results["notes"])
    return out


def plot_flash(fl, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted((k for k in fl if k.isdigit()), key=int)
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        f = fl[key]
        n = f["n"]
        xmax = f["bound_payload"] * 1.5
        labels = {"p2p": "p2p (get --seed)", "curl": "curl, all from one nginx",
                  "bittorrent": "BitTorrent (libtorrent)"}
        for tool, style, color in (("p2p", "-", "tab:blue"), ("curl", "--", "tab:red"),
                                   ("bittorrent", ":", "tab:orange")):
            for i, r in enumerate(f["runs"].get(tool, [])):
                ts = sorted(r["times"])
                if not ts:
                    continue
                xs = [0.0] + [t for t in ts for _ in (0, 1)]
                ys = [0] + [c for k, _ in enumerate(ts) for c in (k, k + 1)]
                xmax = max(xmax, ts[-1] * 1.05)
                label = f"{labels[tool]}, {len(f['runs'][tool])} run(s)" if i == 0 else None
                ax.plot(xs, ys, style, color=color, alpha=0.8, drawstyle="default", label=label)
        ax.axvline(f["bound_payload"], color="black", lw=1.2,
                   label=f"Kumar–Ross bound, payload {f['bound_payload']:.2f} s")
        ax.axvline(f["bound_nominal"], color="gray", lw=1, ls=":",
                   label=f"Kumar–Ross bound, nominal {f['bound_nominal']:.2f} s")
        ax.axvline(f["bound_payload"] * 1.10, color="green", lw=1, ls="-.", label="1.10 × payload bound (target)")
        ax.set_xlim(0, xmax)
        ax.set_ylim(0, n + 0.5)
        ax.set_xlabel("seconds since all downloaders started")
        ax.set_ylabel("downloaders with the verified file")
        ax.set_title(f"flash crowd: 1 seeder + {n}, {f['size'] / MiB:.0f} MiB, 100 Mbit/s up per host")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------- main

SCENARIOS = ["single", "encrypted", "multi", "flash", "memory", "discovery", "micro"]


def main():
    global PIDFILE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--trials", type=int)
    ap.add_argument("--flash-n", type=int, action="append")
    ap.add_argument("--announce-interval", type=float, default=2.0)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--idle-wait", type=float, help="seconds to wait, before each measured run, for the machine "
                    "to be quiet (default: 0 with --quick, else 60)")
    ap.add_argument("--idle-threshold", type=float, default=0.3, help="cores busy that count as quiet")
    ap.add_argument("--no-warm", action="store_true", help="do not warm the page cache before to-disk runs")
    ap.add_argument("--p2p", default=str(REPO / ".build-release" / "release" / "p2p"))
    ap.add_argument("--results", default=str(REPO / "bench-results"))
    ap.add_argument("--work", default=str(REPO / "bench-results" / "work"))
    ap.add_argument("--data", default=str(REPO / "bench-results" / "data"))
    ap.add_argument("--plot-out", help="also copy the flash plot here")
    ap.add_argument("--pidfile")
    ap.add_argument("--summarize", help="print the table of an existing results.json and exit")
    args = ap.parse_args()
    if args.summarize:
        res = json.loads(Path(args.summarize).read_text())
        print(summarize(res))
        if args.plot_out and res["scenarios"].get("flash"):
            plot_flash(res["scenarios"]["flash"], args.plot_out)
        return 0
    scen = args.scenarios or SCENARIOS
    for s in scen:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    PIDFILE = args.pidfile
    if args.idle_wait is None:
        args.idle_wait = 0.0 if args.quick else 60.0

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    b = Bench(args)
    b.machine()
    b.results["meta"]["page_cache_first_touch"] = b.probe_first_touch()
    b.results["meta"]["warm_before_runs"] = not args.no_warm
    log(f"page cache first-touch probe: {b.results['meta']['page_cache_first_touch']} "
        f"({'warming before each to-disk run' if not args.no_warm else 'no warming (--no-warm)'})")
    failed = []
    t_all = time.monotonic()
    try:
        for s in scen:
            t0 = time.monotonic()
            try:
                if s == "single":
                    b.scenario_single("testbed")
                    b.scenario_single("loopback")
                else:
                    getattr(b, f"scenario_{s}")()
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one broken scenario does not stop the others
                import traceback
                traceback.print_exc()
                failed.append(s)
                b.results["notes"].append(f"scenario {s} failed: {e}")
            finally:
                kill_all()
                down_all()
                b.save()
            log(f"   ({s}: {time.monotonic() - t0:.0f} s)")
    finally:
        kill_all()
        down_all()
        b.results["meta"]["total_seconds"] = round(time.monotonic() - t_all, 1)
        b.save()
        shutil.rmtree(b.work, ignore_errors=True)
    png = b.plot()
    if png and args.plot_out:
        shutil.copy(png, args.plot_out)
    b.save()
    table = b.summary()
    (b.out / "summary.md").write_text(table + "\n")
    latest = Path(args.results) / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(b.out.name)
    meta = b.results["meta"]
    print(f"\n## p2p benchmarks ({'quick' if b.quick else 'full'}, {b.runs} run(s) each, "
          f"commit {meta['git_commit']}{'+dirty' if meta['git_dirty'] else ''}, {meta['date_utc']})\n")
    print(f"machine: {meta['cores']} cores, {meta['cpu']} ({' '.join(meta['cpu_flags'])}), "
          f"{meta['memory_gib']} GiB, Linux {meta['kernel']}; medians (min–max)\n")
    print(table)
    print(f"\nresults: {b.out}/ (results.json, runs.tsv, summary.md{', flash.png' if png else ''})")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"run.py: interrupted ({e}); partial results kept")
        sys.exit(130)
