"""Crowd (SPEC §7 scale, §12): 1 seeder + 63 downloaders, every host's egress at 25mbit,
128 MiB, released together, against the Kumar–Ross bound at that rate and a BitTorrent
swarm (libtorrent) on the same hosts; with what each process holds and spends: peak RSS,
CPU-seconds, established TCP connections (sampled every second). Opt-in (about 10 min a run).

If `p2p get --help` mentions --relay-partners, p2p runs twice per run: its default (the
bounded relay overlay) and --relay-partners 0 (every downloader relays to every other).
Each p2p and libtorrent run starts its own seeder on host 1, so that the seeder's figures are
that run's. The hosts get TCP hash tables of their own, so that sampling the connections
costs the runner little CPU (see Testbed)."""

import time

from common import MiB, NOMINAL_BPS, PAYLOAD_BPS, log, median_range
from p2p import await_ready, has_option, p2p_argv, seeder_upload_factor, start_seeder
from processes import CrowdMeter, Proc, await_reports, crowd_problems, proc_status, start_together
from references import bittorrent_available, bt_crowd_once, make_torrent, start_bt_seeder
from testbed import Testbed, rate_bps

DISCOVERY_PORT = 47650
# Buckets of each host's own TCP hash table: room for a full mesh of 63 at a few connections
# a pair; one read of the host's /proc/net/tcp and tcp6 then costs ~0.2 ms of CPU, not ~7 ms.
TCP_EHASH = 1024


def crowd_p2p_once(bench, tb, n, name, size, source, share, rundir, timeout, get_options=(), serve_options=()):
    """A fresh seeder on host 1 (so that its peak RSS and CPU are this run's), then N
    `get --json --seed` released together; done = the JSON line (verified file)."""
    seeder = start_seeder(bench, tb.host(1), "eth0", DISCOVERY_PORT, rundir / "seeder", share,
                          options=serve_options)
    meter = CrowdMeter(seeder)
    try:
        await_ready([seeder])
        seeder_hwm_ready = proc_status(seeder.pid, "VmHWM")
        bench.meter_start(warm=n * size)

        def get(k, barrier):
            d = rundir / f"d{k + 2}"
            argv = p2p_argv(bench, "get", "eth0", DISCOVERY_PORT, d,
                            extra=(name, "--json", "--seed", "--timeout", timeout, *get_options))
            return Proc(argv, host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
        gets, t0 = start_together(lambda barrier: [get(k, barrier) for k in range(n)])
        meter.start(gets)
        done, reports = await_reports(gets, t0, t0 + timeout + 30)
        meter.done()
        problems = crowd_problems(bench, gets, reports, [None] * n, source, size, rundir)
    finally:
        meter.stop()
        seeder.stop()
    times = sorted(t for t in done if t is not None and t == t)
    return {"last": max(times) if times and not problems else None, "times": times,
            "ok": not problems, "problem": "; ".join(problems) or None, "failed_downloads": len(problems),
            "seeder_upload_factor": seeder_upload_factor(gets, reports, size),
            "seeder_vmhwm_ready_kib": seeder_hwm_ready, **meter.result()}


def crowd_bt_once(bench, tb, n, name, size, source, share, torrent, rundir, timeout):
    """A fresh libtorrent seeder on host 1, then N libtorrent downloaders released together."""
    seeder = start_bt_seeder(tb, 1, share, torrent, rundir / "bt-seeder")
    meter = CrowdMeter(seeder)
    try:
        bench.meter_start(warm=n * size)
        res = bt_crowd_once(bench, tb, range(2, n + 2), range(1, n + 2), torrent, name, size, source,
                            rundir / "bittorrent", timeout, seeder=seeder, meter=meter)
    finally:
        meter.stop()
        seeder.stop()
    return {**res, **meter.result()}


def record(bench, n, tool, r, res):
    """One run in runs.tsv (and the machine's busy cores since bench.meter_start in `res`)."""
    row = bench.record("crowd", f"N={n}", tool, r, res["last"] if res["ok"] else "failed", res["ok"],
                       times=res["times"], failed_downloads=res["failed_downloads"],
                       seeder_upload_factor=res["seeder_upload_factor"], vmhwm_max_kib=res["downloader_vmhwm_max_kib"],
                       crowd_cpu_s=res["crowd_cpu_s"], conn_peak_max=res["conn_peak_max"],
                       conn_total_peak=res["conn_total_peak"], peers_total_peak=res.get("peers_total_peak"))
    res["busy_cores_during"] = row.get("busy_cores_during")


def summarize_runs(xs, bound):
    """Median (min–max) over runs of what crowd_*_once measured."""
    ok = [x for x in xs if x["ok"]]
    mr = lambda key, runs=xs: median_range([x.get(key) for x in runs])
    return {
        "last": median_range([x["last"] for x in ok]),
        "ratio_payload": median_range([x["last"] / bound for x in ok]),
        "failures": len(xs) - len(ok),
        "failed_downloads": sum(x["failed_downloads"] for x in xs),
        "seeder_upload_factor": mr("seeder_upload_factor", ok),
        "downloader_vmhwm_max_kib": mr("downloader_vmhwm_max_kib"),
        "downloader_vmhwm_median_kib": mr("downloader_vmhwm_median_kib"),
        "seeder_vmhwm_kib": mr("seeder_vmhwm_kib"),
        "downloader_anon_peak_max_kib": mr("downloader_anon_peak_max_kib"),
        "downloader_anon_peak_median_kib": mr("downloader_anon_peak_median_kib"),
        "downloader_rss_file_median_kib": mr("downloader_rss_file_median_kib"),
        "crowd_cpu_s": mr("crowd_cpu_s", ok),
        "seeder_cpu_s": mr("seeder_cpu_s", ok),
        "busy_cores": mr("busy_cores_release_to_done"),
        # Established TCP connections; "peers_*" the same from libtorrent's own count (TCP and uTP).
        **{f"{kind}_{what}": mr(f"{kind}_{what}") for kind in ("conn", "peers")
           for what in ("peak_max", "peak_median", "seeder_peak", "total_peak")},
    }


def scenario_crowd(bench):
    n = bench.args.crowd_n or (6 if bench.quick else 63)
    size = bench.size(128 * MiB, 16 * MiB)
    rate = bench.args.crowd_rate
    bps = rate_bps(rate)
    bits = size * 8
    kr = lambda u: max(bits / u, n * bits / (u + n * u))
    bound = kr(PAYLOAD_BPS * bps / NOMINAL_BPS)  # the payload rate scales with the link's
    timeout = int(max(120, 12 * bound))
    name = "crowd.bin"
    base = bench.work / "crowd"
    source = bench.data_file(size)
    # p2p's variants: (key, label, get options, serve options).
    tools = set(bench.args.crowd_tools.split(","))
    variants = [("p2p", "p2p", (), ())] if "p2p" in tools else []
    if "mesh" not in tools:
        pass
    elif has_option(bench, "get", "--relay-partners"):
        serve = ("--relay-partners", "0") if has_option(bench, "serve", "--relay-partners") else ()
        variants.append(("p2p_mesh", "p2p full mesh", ("--relay-partners", "0"), serve))
    else:
        bench.results["notes"].append("crowd: `p2p get --help` has no --relay-partners: default overlay only")
    log(f"== crowd: 1 seeder + N = {n} downloaders, every host {rate}, {size / MiB:.0f} MiB, {bench.runs} run(s); "
        f"p2p as {', '.join(v[1] for v in variants)}; Kumar–Ross payload bound {bound:.2f} s")
    tb = None
    runs = {v[0]: [] for v in variants}
    torrent = None
    try:
        # Each host its own TCP hash table, so that counting connections is cheap (see Testbed).
        tb = Testbed("bchc", n + 1, rate=rate, tcp_ehash=TCP_EHASH)
        share = base / "share"
        bench.share_with(share, name, size)
        if "bittorrent" not in tools:
            pass
        elif bittorrent_available():
            torrent = make_torrent(share / name, base / "bt")
            runs["bittorrent"] = []
        else:
            bench.results["notes"].append("crowd: no BitTorrent reference (python3-libtorrent not importable)")
        for r in range(bench.runs):
            rd = base / f"run{r}"
            for key, label, get_options, serve_options in variants:
                res = crowd_p2p_once(bench, tb, n, name, size, source, share, rd / key, timeout,
                                     get_options, serve_options)
                runs[key].append(res)
                record(bench, n, label, r, res)
                bench.cleanup_dir(rd)
                time.sleep(1)
            if torrent:
                res = crowd_bt_once(bench, tb, n, name, size, source, share, torrent, rd, timeout)
                runs["bittorrent"].append(res)
                record(bench, n, "bittorrent", r, res)
                bench.cleanup_dir(rd)
                time.sleep(1)
    finally:
        if tb:
            tb.down()
        bench.results["scenarios"]["crowd"] = {
            "n": n, "size": size, "rate": rate, "rate_bps": bps, "timeout": timeout,
            "tcp_ehash_per_host": tb.tcp_ehash if tb else None,
            "bound_payload": bound, "bound_nominal": kr(bps),
            "variants": {key: {"label": label, "get_options": list(g), "serve_options": list(s)}
                         for key, label, g, s in variants},
            "runs": runs,
            **{key: summarize_runs(xs, bound) for key, xs in runs.items()},
        }
