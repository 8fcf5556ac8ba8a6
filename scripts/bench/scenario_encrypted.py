"""Encrypted against plaintext: the single-source download on loopback, with and without
a network key, alternating."""

import os

from common import GiB, MiB, log, median_range, pair_per_gib
from p2p import await_ready, p2p_get_once, start_seeder
from processes import proc_status


def scenario_encrypted(bench):
    """Single source on loopback, without and with a network key (`--secret-file`),
    alternating run by run: what authenticating and encrypting every frame (AES-GCM)
    costs. Issue 5's goal: encrypted throughput >= 70 % of plaintext."""
    size = bench.size(1 * GiB, 256 * MiB)
    name = "encrypted.bin"
    key = "encrypted"
    base = bench.work / key
    source = bench.data_file(size)
    share = base / "seed-share"
    bench.share_with(share, name, size)
    secret = base / "secret"
    secret.write_text("bench-" + os.urandom(16).hex() + "\n")
    secret.chmod(0o600)
    # A keyed and an unkeyed swarm cannot see each other: each has its own seeder and
    # discovery port; both serve the same file from the same share folder.
    variants = {"plaintext": (47612, ()), "encrypted": (47613, ("--secret-file", secret))}
    log(f"== encrypted vs plaintext over loopback: {size / MiB:.0f} MiB, {bench.runs} run(s) each, alternating")
    procs = []
    runs = {v: [] for v in variants}
    try:
        seeders = {}
        for variant, (disc, options) in variants.items():
            seeders[variant] = start_seeder(bench, None, "lo", disc, base / f"seeder-{variant}", share, options)
            procs.append(seeders[variant])
        await_ready(list(seeders.values()))
        for r in range(bench.runs):
            for variant, (disc, options) in variants.items():
                rd = base / f"run{r}-{variant}"
                bench.meter_start(warm=size)
                res = p2p_get_once(bench, None, "lo", disc, name, size, source, rd, [seeders[variant]],
                                   options=options)
                runs[variant].append(res)
                bench.record(key, variant, "p2p", r, res["wall"], res["ok"], p2p_seconds=res["seconds"],
                             cpu_pct=res["cpu_pct"],
                             seeder_cpu_pct=res["seeder_cpu_pct"], cpu=res["cpu"], seeder_cpu=res["seeder_cpu"])
                bench.cleanup_dir(rd)
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
        s[f"{variant}_cpu_per_gib"] = pair_per_gib(runs[variant], size)
    # Throughput ratio encrypted / plaintext = plaintext time / encrypted time, per
    # pair of runs made one after the other, so that a change of load between pairs
    # does not count.
    pairs = [(p, e) for p, e in zip(runs["plaintext"], runs["encrypted"]) if p["ok"] and e["ok"]]
    s["ratio_wall"] = median_range([p["wall"] / e["wall"] for p, e in pairs])
    s["ratio_seconds"] = median_range([p["seconds"] / e["seconds"] for p, e in pairs
                                       if p["seconds"] and e["seconds"]])
    bench.results["scenarios"][key] = s
