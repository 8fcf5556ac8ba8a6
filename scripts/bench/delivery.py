"""`p2p send` (SPEC §10) timed on the testbed: accepting targets started first, then one
sender, timed from its start to its exit (every target has verified everything and sent a
receipt), with the CPU every process spent."""

import filecmp
import json
import os
import random
import time
from pathlib import Path

from common import MiB, log
from p2p import await_ready, p2p_argv
from processes import Proc, proc_cpu, run

# Senders and targets use a discovery port of their own, so that a seeder of another
# scenario on the same hosts is not among the peers they hear.
SEND_DISCOVERY_PORT = 47640


def network_key(bench):
    """A key made by `p2p key`, once per benchmark run (a delivery needs one)."""
    path = bench.work / "swarm.key"
    if not path.exists():
        key = run([bench.p2p, "key"], timeout=30).stdout.strip()
        path.write_text(key + "\n")
        os.chmod(path, 0o600)
    return path


def make_folder(root, count, smallest, largest, seed=1000):
    """A folder of `count` files of `smallest`..`largest` random bytes in ten subfolders,
    the same sizes for the same seed; made once and kept. Returns (folder, total bytes)."""
    rng = random.Random(seed)
    sizes = [rng.randint(smallest, largest) for _ in range(count)]
    folder = root / f"tree-{count}-{smallest}-{largest}"
    stamp = root / f"{folder.name}.complete"
    if not stamp.exists():
        log(f"  making {folder.name} ({count} files, {sum(sizes) / MiB:.1f} MiB of random bytes)")
        for k, size in enumerate(sizes):
            path = folder / f"part{k % 10}" / f"file{k:04d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(size))
        stamp.write_text("")
    return folder, sum(sizes)


def tree_problem(copy, source):
    """Why the folder `copy` is not byte-identical to `source` (every file, no extra), or None."""
    copy, source = Path(copy), Path(source)
    if not copy.is_dir():
        return f"missing {copy}"
    want = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    have = {p.relative_to(copy) for p in copy.rglob("*") if p.is_file()}
    if want - have:
        return f"{len(want - have)} of {len(want)} files missing, e.g. {sorted(want - have)[0]}"
    if have - want:
        return f"{len(have - want)} files too many, e.g. {sorted(have - want)[0]}"
    for rel in sorted(want):
        if not filecmp.cmp(copy / rel, source / rel, shallow=False):
            return f"{rel} differs"
    return None


def send_once(bench, tb, sender, targets, path, nbytes, rundir, timeout, check):
    """`p2p send PATH --to t<i>...` from host `sender` to `serve --accept` on each host in
    `targets`. `check(downloads folder)` says what is wrong with one target's copy.
    Returns the wall time of the send, the CPU of every side and what went wrong."""
    key = network_key(bench)
    receivers = []
    sending = None
    try:
        for i in targets:
            d = rundir / f"t{i}"
            argv = p2p_argv(bench, "serve", "eth0", SEND_DISCOVERY_PORT, d,
                            extra=("--accept", "--name", f"t{i}", "--secret-file", key))
            receivers.append(Proc(argv, host=tb.host(i), stdout=d / "stdout", stderr=d / "stderr"))
        await_ready(receivers)
        cpu_before = [proc_cpu(r.pid) or 0.0 for r in receivers]
        bench.meter_start(warm=len(targets) * nbytes)
        d = rundir / "sender"
        names = [x for i in targets for x in ("--to", f"t{i}")]
        argv = p2p_argv(bench, "send", "eth0", SEND_DISCOVERY_PORT, d,
                        extra=(path, *names, "--json", "--timeout", timeout, "--secret-file", key))
        sending = Proc(argv, host=tb.host(sender), stdout=d / "stdout", stderr=d / "stderr")
        deadline = time.monotonic() + timeout + 30
        while not sending.poll() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not sending.poll():
            sending.stop(grace=5)
        wall = sending.elapsed
        targets_cpu = sum((proc_cpu(r.pid) or 0.0) - c for r, c in zip(receivers, cpu_before))
    finally:
        for r in receivers:
            r.stop(grace=10)
    problems = []
    if sending.status != 0:
        problems.append(f"send exit {sending.status}: {sending.stderr_tail(8)}")
    try:
        receipts = json.loads(sending.stdout_text() or "[]")
    except ValueError:
        receipts = []
    if len(receipts) != len(targets) and not problems:
        problems.append(f"{len(receipts)} receipts for {len(targets)} targets")
    for i in targets:
        p = check(rundir / f"t{i}" / "downloads")
        if p:
            problems.append(f"target t{i}: {p}")
    if problems:
        log("      " + "\n      ".join(problems[:5]))
    return {"last": wall if not problems else None, "wall": wall, "ok": not problems,
            "problem": "; ".join(problems) or None, "sender_cpu": sending.cpu_seconds,
            "targets_cpu": round(targets_cpu, 2), "receipts": len(receipts)}
