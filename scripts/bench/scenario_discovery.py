"""Discovery: join, stop (SIGTERM) and kill (SIGKILL) latency on loopback, as seen by an
observer `p2p shell` polled with `peers --json`."""

import json
import os
import select
import shutil
import signal
import subprocess
import time

from common import log
from p2p import p2p_argv
from processes import Proc


def scenario_discovery(bench):
    trials = bench.args.trials or (5 if bench.quick else 50)
    base = bench.work / "discovery"
    log(f"== discovery on loopback: {trials} trials of join, stop (SIGTERM), kill (SIGKILL); "
        f"announce interval {bench.args.announce_interval} s")
    disc = 47650
    interval = str(bench.args.announce_interval)
    obs_argv = p2p_argv(bench, "shell", "lo", disc, base / "observer",
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
                subj = Proc(p2p_argv(bench, "serve", "lo", disc, d) + ["--announce-interval", interval],
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

    bench.results["scenarios"]["discovery"] = {
        "trials": trials, "announce_interval": float(interval), "poll_ms": 20,
        "join": dist(join), "stop": dist(stop), "kill": dist(kill), "failures": failures,
    }
    for f in failures:
        log(f"    {f}")
