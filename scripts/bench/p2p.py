"""The program under test: its command lines, seeders, and one timed `p2p get`."""

import re
import shutil
import subprocess
import time
from pathlib import Path

from common import log
from processes import Proc, parse_json_line, run, thread_cpu, wait_for_text


def p2p_argv(bench, cmd, iface, disc_port, base, share=None, extra=()):
    base.mkdir(parents=True, exist_ok=True)
    share = share or base / "share"
    for d in (share, base / "downloads", base / "state"):
        d.mkdir(parents=True, exist_ok=True)
    return [bench.p2p, cmd, *extra, "--interface", iface, "--port", "0",
            "--discovery-port", disc_port, "--share", share,
            "--downloads", base / "downloads", "--state", base / "state",
            "--distribute-interval", "0", "--log-level", bench.args.log_level]


def has_option(bench, cmd, option):
    """Whether `p2p CMD --help` mentions `option` (an option the binary may not have yet)."""
    try:
        r = run([bench.p2p, cmd, "--help"], timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in r.stdout + r.stderr


def start_seeder(bench, host, iface, disc_port, base, share, options=()):
    p = Proc(p2p_argv(bench, "serve", iface, disc_port, base, share, extra=options), host=host,
             stdout=base / "stdout", stderr=base / "stderr")
    return p


def await_ready(seeders, timeout=300):
    for p in seeders:
        if not wait_for_text(p.stderr_path, "peer ready", timeout, p):
            raise RuntimeError(f"seeder did not become ready:\n{p.stderr_tail()}")
    time.sleep(0.5)  # discovery starts right after "peer ready"


def p2p_get_once(bench, host, iface, disc_port, name, size, source, rundir, seeders=(), timeout=600, options=()):
    """One `p2p get --json`: returns a dict with wall, seconds, cpu, ... and ok."""
    argv = p2p_argv(bench, "get", iface, disc_port, rundir, extra=(name, "--json", "--timeout", timeout, *options))
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
    report = parse_json_line(g.stdout_text())
    problem = None
    if g.status != 0:
        problem = f"exit {g.status}: {g.stderr_tail()}"
    elif report is None:
        problem = "no JSON report"
    else:
        problem = bench.verify_copy(report.get("path", ""), source, size)
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
        keep = bench.out / "failed" / rundir.name
        keep.mkdir(parents=True, exist_ok=True)
        for f in ("stdout", "stderr"):
            if (rundir / f).exists():
                shutil.copy(rundir / f, keep / f)
    return res


def seeder_upload_factor(gets, reports, size):
    """What the seeder on 198.18.0.1 uploaded to a crowd of `get`s, per F: the bytes their
    reports say came from it, found by its short id in a downloader's "peer joined" log line."""
    for g in gets:
        m = re.search(r"peer\.address=198\.18\.0\.1:\d+.*remote\.peer\.id=([0-9a-f]+).*peer joined|"
                      r"remote\.peer\.id=([0-9a-f]+).*peer\.address=198\.18\.0\.1:\d+.*peer joined",
                      Path(g.stderr_path).read_text(errors="replace"))
        if m:
            short = m.group(1) or m.group(2)
            return sum(v for r in reports if r for k, v in (r.get("bytesFromPeers") or {}).items()
                       if k.startswith(short)) / size
    return None
