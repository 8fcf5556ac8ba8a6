"""Single source: one `p2p get` from one seeder, on two testbed hosts or on loopback,
against curl from nginx on the seeder's host and one iperf3 stream."""

from common import GiB, MiB, log, median_range, pair_per_gib
from p2p import await_ready, p2p_get_once, start_seeder
from processes import children_of, proc_status
from references import curl_once, iperf_once, start_iperf_server, start_nginx
from testbed import Testbed


def scenario_single(bench, where):
    size = bench.size(1 * GiB, 64 * MiB)
    name = "single.bin"
    key = f"single-{where}"
    base = bench.work / key
    source = bench.data_file(size)
    share = base / "seed-share"
    bench.share_with(share, name, size)
    log(f"== single source over {where}: {size / MiB:.0f} MiB, {bench.runs} run(s)")
    tb = None
    procs = []
    try:
        if where == "testbed":
            tb = Testbed("bchs", 2)
            seed_host, get_host, iface, addr, disc = tb.host(1), tb.host(2), "eth0", tb.addr(1), 47610
        else:
            seed_host, get_host, iface, addr, disc = None, None, "lo", "127.0.0.1", 47611
        seeder = start_seeder(bench, seed_host, iface, disc, base / "seeder", share)
        procs.append(seeder)
        await_ready([seeder])
        nginx = start_nginx(seed_host, addr, 18080, share, base / "nginx")
        procs.append(nginx)
        iperf = start_iperf_server(seed_host, addr, 15201, base / "iperf")
        procs.append(iperf)
        url = f"http://{addr}:18080/{name}"
        runs = {"p2p": [], "curl": [], "iperf3": []}
        for r in range(bench.runs):
            rd = base / f"run{r}"
            bench.meter_start(warm=size)
            res = p2p_get_once(bench, get_host, iface, disc, name, size, source, rd / "p2p", [seeder])
            runs["p2p"].append(res)
            bench.record(key, where, "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                         cpu_pct=res["cpu_pct"], seeder_cpu_pct=res["seeder_cpu_pct"])
            bench.cleanup_dir(rd)
            bench.meter_start(warm=size)
            res = curl_once(bench, get_host, url, size, source, rd / "curl",
                            server_pids=[nginx.pid] + children_of(nginx.pid))
            runs["curl"].append(res)
            bench.record(key, where, "curl", r, res["wall"], res["ok"], cpu_pct=res["cpu_pct"],
                         server_cpu_pct=res["server_cpu_pct"])
            bench.cleanup_dir(rd)
            bench.meter_start()
            res = iperf_once(get_host, addr, 15201, size, rd / "iperf")
            runs["iperf3"].append(res)
            bench.record(key, where, "iperf3", r, res["seconds"] if res["seconds"] else "failed", res["ok"],
                         gbps=(res["bps"] or 0) / 1e9)
            bench.cleanup_dir(rd)
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
        "p2p_cpu_per_gib": pair_per_gib(runs["p2p"], size),
        "curl_cpu_per_gib": pair_per_gib(runs["curl"], size, server="server_cpu"),
        "iperf3_cpu_per_gib": pair_per_gib(runs["iperf3"], size, server="server_cpu"),
    }
    bench.results["scenarios"][key] = s
