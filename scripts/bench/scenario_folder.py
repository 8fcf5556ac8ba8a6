"""A folder of 1,000 files of 1-64 KiB (ten subfolders) delivered to 8 hosts, every host
100 Mbit/s: `p2p send` against the Kumar–Ross bound for its bytes, the targets each pulling
every file from one nginx (one curl, one connection, each), and a BitTorrent swarm
(libtorrent, one multi-file torrent)."""

import time

from common import KiB, MiB, PAYLOAD_BPS, NOMINAL_BPS, log, median_range
from delivery import make_folder, send_once, tree_problem
from processes import Proc, start_together
from references import bittorrent_available, bt_crowd_once, make_torrent, start_bt_seeder, start_nginx
from testbed import Testbed


def curl_folder_once(bench, tb, targets, base_url, folder, rundir, timeout):
    """Each target fetches every file of `folder` from nginx with one curl (keep-alive),
    all released together; done = that curl's exit."""
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())

    def fetch(i, barrier):
        d = rundir / f"c{i}"
        d.mkdir(parents=True, exist_ok=True)
        config = d / "urls"
        config.write_text("".join(f'url = "{base_url}/{rel}"\noutput = "{d / folder.name / rel}"\n' for rel in files))
        return Proc(["curl", "-sS", "--fail", "--create-dirs", "--max-time", timeout, "-K", config],
                    host=tb.host(i), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
    cs, t0 = start_together(lambda barrier: [fetch(i, barrier) for i in targets])
    deadline = t0 + timeout + 30
    while time.monotonic() < deadline and not all([c.poll() for c in cs]):
        time.sleep(0.005)
    for c in cs:
        c.stop()
    problems = []
    for i, c in zip(targets, cs):
        p = None if c.status == 0 else f"exit {c.status}: {c.stderr_tail(3)}"
        p = p or tree_problem(rundir / f"c{i}" / folder.name, folder)
        if p:
            problems.append(f"curl {i}: {p}")
    times = sorted(c.t_end - t0 for c in cs if c.t_end is not None)
    return {"last": max(times) if times and not problems else None, "times": times,
            "ok": not problems, "problem": "; ".join(problems) or None}


def scenario_folder(bench):
    count, n = (100, 4) if bench.quick else (1000, 8)
    folder, total = make_folder(bench.data / "folders", count, 1 * KiB, 64 * KiB)
    base = bench.work / "folder"
    targets = list(range(2, n + 2))
    bits = total * 8
    kr = lambda u: max(bits / u, n * bits / (u + n * u))
    timeout = int(max(60, 20 * kr(PAYLOAD_BPS)))
    log(f"== folder: {count} files ({total / MiB:.1f} MiB) from 1 host to {n}, every host 100mbit, "
        f"{bench.runs} run(s)")
    procs, tb = [], None
    runs = {"send": [], "curl": [], "bittorrent": []}
    try:
        tb = Testbed("bchd", n + 1, rate="100mbit")
        nginx = start_nginx(tb.host(1), tb.addr(1), 18080, folder.parent, base / "nginx")
        procs.append(nginx)
        torrent = bt_seeder = None
        if bittorrent_available():
            torrent = make_torrent(folder, base / "bt", piece_length=16 * KiB)
            bt_seeder = start_bt_seeder(tb, 1, folder.parent, torrent, base / "bt-seeder")
            procs.append(bt_seeder)
        for r in range(bench.runs):
            rd = base / f"run{r}"
            res = send_once(bench, tb, 1, targets, folder, total, rd / "send", timeout,
                            lambda downloads: tree_problem(downloads / folder.name, folder))
            runs["send"].append(res)
            bench.record("folder", f"{count} files", "p2p send", r, res["last"] if res["ok"] else "failed",
                         res["ok"], sender_cpu=res["sender_cpu"], targets_cpu=res["targets_cpu"])
            bench.cleanup_dir(rd)
            time.sleep(1)
            bench.meter_start(warm=n * total)
            res = curl_folder_once(bench, tb, targets, f"http://{tb.addr(1)}:18080/{folder.name}", folder,
                                   rd / "curl", timeout * n)
            runs["curl"].append(res)
            bench.record("folder", f"{count} files", "curl", r, res["last"] if res["ok"] else "failed", res["ok"])
            bench.cleanup_dir(rd)
            if torrent:
                time.sleep(1)
                bench.meter_start(warm=n * total)
                res = bt_crowd_once(bench, tb, targets, [1] + targets, torrent, folder.name, total, folder,
                                    rd / "bittorrent", timeout, seeder=bt_seeder,
                                    verify=lambda copy: tree_problem(copy, folder))
                runs["bittorrent"].append(res)
                bench.record("folder", f"{count} files", "bittorrent", r, res["last"] if res["ok"] else "failed",
                             res["ok"], seeder_upload_factor=res["seeder_upload_factor"])
                bench.cleanup_dir(rd)
    finally:
        for p in reversed(procs):
            p.stop()
        if tb:
            tb.down()
    ok = lambda xs: [x for x in xs if x["ok"]]
    bench.results["scenarios"]["folder"] = {
        "files": count, "n": n, "size": total, "runs": runs,
        "send": median_range([x["last"] for x in ok(runs["send"])]),
        "send_cpu": median_range([x["sender_cpu"] + x["targets_cpu"] for x in ok(runs["send"])
                                  if x["sender_cpu"] is not None]),
        "send_failures": len(runs["send"]) - len(ok(runs["send"])),
        "curl": median_range([x["last"] for x in ok(runs["curl"])]),
        "curl_failures": len(runs["curl"]) - len(ok(runs["curl"])),
        "bittorrent": median_range([x["last"] for x in ok(runs["bittorrent"])]) if runs["bittorrent"] else None,
        "bittorrent_failures": len(runs["bittorrent"]) - len(ok(runs["bittorrent"])),
        "bound_payload": kr(PAYLOAD_BPS), "bound_nominal": kr(NOMINAL_BPS),
    }
