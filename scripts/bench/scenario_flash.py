"""Flash crowd: 1 seeder and N downloaders released together, every host rate-limited,
against the Kumar–Ross bound, curl from the seeder's nginx, and a BitTorrent swarm; then the
same file pushed to the same N hosts with `p2p send` (SPEC §10), beside the same references."""

import time

from common import MiB, NOMINAL_BPS, PAYLOAD_BPS, log, median_range
from delivery import send_once
from p2p import await_ready, p2p_argv, seeder_upload_factor, start_seeder
from processes import Proc, await_reports, crowd_problems, proc_status, start_together
from references import (bittorrent_available, bt_crowd_once, flash_curl_once, iperf_fanin_once, make_torrent,
                        start_bt_seeder, start_nginx)
from testbed import Testbed


def flash_p2p_once(bench, tb, n, name, size, source, rundir, timeout):
    """N `get --seed --json` released together; done = the JSON line (verified file)."""
    def get(k, barrier):
        d = rundir / f"d{k + 2}"
        argv = p2p_argv(bench, "get", "eth0", 47630, d, extra=(name, "--json", "--seed", "--timeout", timeout))
        return Proc(argv, host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
    gets, t0 = start_together(lambda barrier: [get(k, barrier) for k in range(n)])
    done, reports = await_reports(gets, t0, t0 + timeout + 30)
    hwm = [proc_status(g.pid, "VmHWM") for g in gets]
    problems = crowd_problems(bench, gets, reports, [None] * n, source, size, rundir)
    times = [t for t in done if t is not None and t == t]
    return {"last": max(times) if times and not problems else None, "times": sorted(times),
            "seeder_upload_factor": seeder_upload_factor(gets, reports, size),
            "bytes_from_peers": [r.get("bytesFromPeers") if r else None for r in reports],
            "seconds": [r.get("seconds") if r else None for r in reports],
            "ok": not problems, "problem": "; ".join(problems) or None,
            "vmhwm_kib": hwm}


def scenario_flash(bench):
    size = bench.size(128 * MiB, 16 * MiB)
    ns = bench.args.flash_n or ([4] if bench.quick else [8, 15])
    name = "flash.bin"
    base = bench.work / "flash"
    source = bench.data_file(size)
    log(f"== flash crowd: 1 seeder + N = {ns} downloaders, every host 100mbit, {size / MiB:.0f} MiB, "
        f"{bench.runs} run(s)")
    procs, tb = [], None
    out = {}
    try:
        tb = Testbed("bchf", max(ns) + 1, rate="100mbit")
        share = base / "share"
        bench.share_with(share, name, size)
        seeder = start_seeder(bench, tb.host(1), "eth0", 47630, base / "seeder", share)
        procs.append(seeder)
        await_ready([seeder])
        nginx = start_nginx(tb.host(1), tb.addr(1), 18080, share, base / "nginx")
        procs.append(nginx)
        url = f"http://{tb.addr(1)}:18080/{name}"
        torrent = None
        if bittorrent_available():
            torrent = make_torrent(share / name, base / "bt")
            bt_seeder = start_bt_seeder(tb, 1, share, torrent, base / "bt-seeder")
            procs.append(bt_seeder)
        else:
            bench.results["notes"].append("flash: no BitTorrent reference (python3-libtorrent not importable)")
        # What one TCP stream achieves through the seeder's 100mbit uplink for F bytes.
        bench.meter_start()
        cal = iperf_fanin_once(tb, [1], 2, size, base / "iperf-cal")
        bench.record("flash", "calibration", "iperf3 1 stream", 0, cal["wall"], cal["ok"], mbps=cal["mbps_each"])
        out["iperf3_one_uplink"] = cal
        for n in ns:
            bits = size * 8
            kr = lambda u: max(bits / u, n * bits / (u + n * u))
            cs_bound = n * bits / PAYLOAD_BPS
            timeout = int(max(120, 12 * kr(PAYLOAD_BPS)))
            cs_timeout = int(max(120, 3 * cs_bound))
            runs = {"p2p": [], "curl": [], "bittorrent": [], "send": []}
            for r in range(bench.runs):
                rd = base / f"n{n}-run{r}"
                bench.meter_start(warm=n * size)
                res = flash_p2p_once(bench, tb, n, name, size, source, rd / "p2p", timeout)
                runs["p2p"].append(res)
                bench.record("flash", f"N={n}", "p2p", r, res["last"] if res["ok"] else "failed", res["ok"],
                             times=res["times"], seeder_upload_factor=res["seeder_upload_factor"])
                bench.cleanup_dir(rd)
                time.sleep(1)
                bench.meter_start(warm=n * size)
                res = flash_curl_once(bench, tb, n, url, size, source, rd / "curl", cs_timeout)
                runs["curl"].append(res)
                bench.record("flash", f"N={n}", "curl", r, res["last"] if res["ok"] else "failed", res["ok"],
                             times=res["times"])
                bench.cleanup_dir(rd)
                if torrent:
                    time.sleep(1)
                    bench.meter_start(warm=n * size)
                    res = bt_crowd_once(bench, tb, range(2, n + 2), range(1, n + 2), torrent, name, size, source,
                                        rd / "bittorrent", timeout, seeder=bt_seeder)
                    runs["bittorrent"].append(res)
                    bench.record("flash", f"N={n}", "bittorrent", r, res["last"] if res["ok"] else "failed",
                                 res["ok"], times=res["times"], seeder_upload_factor=res["seeder_upload_factor"])
                    bench.cleanup_dir(rd)
                # The same file delivered by `p2p send` from the seeder's host to the N hosts.
                time.sleep(1)
                res = send_once(bench, tb, 1, range(2, n + 2), source, size, rd / "send", timeout,
                                lambda downloads: bench.verify_copy(downloads / source.name, source, size))
                runs["send"].append(res)
                bench.record("flash", f"N={n}", "p2p send", r, res["last"] if res["ok"] else "failed", res["ok"],
                             sender_cpu=res["sender_cpu"], targets_cpu=res["targets_cpu"])
                bench.cleanup_dir(rd)
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
                "send": median_range([x["last"] for x in ok(runs["send"])]),
                "send_failures": len(runs["send"]) - len(ok(runs["send"])),
                "send_cpu": median_range([x["sender_cpu"] + x["targets_cpu"] for x in ok(runs["send"])
                                          if x["sender_cpu"] is not None]),
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
    bench.results["scenarios"]["flash"] = out
