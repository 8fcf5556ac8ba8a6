"""Multi source: 4 rate-limited seeders to one downloader, against the links' bound,
aria2c with the 4 hosts' nginx as mirrors, iperf3 from the 4 hosts, and BitTorrent."""

from common import MiB, NOMINAL_BPS, PAYLOAD_BPS, log, median_range, pair_per_gib, per_gib
from p2p import await_ready, p2p_get_once, start_seeder
from references import (aria2_once, bittorrent_available, bt_crowd_once, iperf_fanin_once, make_torrent,
                        start_bt_seeder, start_nginx)
from testbed import Testbed


def scenario_multi(bench):
    size = bench.size(256 * MiB, 32 * MiB)
    name = "multi.bin"
    base = bench.work / "multi"
    source = bench.data_file(size)
    log(f"== multi source: 4 seeders at 100mbit, {size / MiB:.0f} MiB, {bench.runs} run(s)")
    procs, tb = [], None
    try:
        tb = Testbed("bchm", 5, rate="100mbit")
        tb.rate(5, "none")
        seeders = []
        for i in range(1, 5):
            share = base / f"share{i}"
            bench.share_with(share, name, size)
            s = start_seeder(bench, tb.host(i), "eth0", 47620, base / f"seeder{i}", share)
            seeders.append(s)
            procs.append(s)
        await_ready(seeders)
        for i in range(1, 5):
            procs.append(start_nginx(tb.host(i), tb.addr(i), 18080, base / f"share{i}", base / f"nginx{i}"))
        urls = [f"http://{tb.addr(i)}:18080/{name}" for i in range(1, 5)]
        torrent = None
        if bittorrent_available():
            torrent = make_torrent(base / "share1" / name, base / "bt")
            for i in range(1, 5):
                procs.append(start_bt_seeder(tb, i, base / f"share{i}", torrent, base / f"bt-seeder{i}"))
        else:
            bench.results["notes"].append("multi: no BitTorrent reference (python3-libtorrent not importable)")
        runs = {"p2p": [], "aria2c": [], "iperf3": [], "bittorrent": []}
        for r in range(bench.runs):
            rd = base / f"run{r}"
            bench.meter_start()
            res = iperf_fanin_once(tb, [1, 2, 3, 4], 5, size // 4, rd / "iperf")
            runs["iperf3"].append(res)
            bench.record("multi", "4x100mbit", "iperf3 4 streams", r, res["wall"], res["ok"],
                         mbps_each=res["mbps_each"])
            bench.cleanup_dir(rd)
            bench.meter_start(warm=size)
            res = p2p_get_once(bench, tb.host(5), "eth0", 47620, name, size, source, rd / "p2p", seeders)
            runs["p2p"].append(res)
            bench.record("multi", "4x100mbit", "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                         from_peers=res["bytes_from_peers"])
            bench.cleanup_dir(rd)
            bench.meter_start(warm=size)
            res = aria2_once(bench, tb.host(5), urls, name, size, source, rd / "aria2")
            runs["aria2c"].append(res)
            bench.record("multi", "4x100mbit", "aria2c", r, res["wall"], res["ok"])
            bench.cleanup_dir(rd)
            if torrent:
                bench.meter_start(warm=size)
                res = bt_crowd_once(bench, tb, [5], range(1, 5), torrent, name, size, source, rd / "bittorrent", 600)
                runs["bittorrent"].append(res)
                bench.record("multi", "4x100mbit", "bittorrent", r, res["last"] if res["ok"] else "failed",
                             res["ok"])
                bench.cleanup_dir(rd)
    finally:
        for p in reversed(procs):
            p.stop()
        if tb:
            tb.down()
    ok = lambda xs: [x for x in xs if x["ok"]]
    bits = size * 8
    bench.results["scenarios"]["multi"] = {
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
        # The get and its four seeders together; aria2c alone (nginx's CPU is not measured
        # on the mirrors).
        "p2p_cpu_per_gib": pair_per_gib(runs["p2p"], size),
        "aria2c_cpu_per_gib": median_range([per_gib(x["cpu"], size) for x in ok(runs["aria2c"])]),
    }
