"""Memory: peak RSS (VmHWM) of a downloader of a large file on loopback, and of a seeder
serving 8 peers at once on the testbed."""

import os
import shutil
import time

from common import GiB, MiB, log
from p2p import await_ready, p2p_argv, start_seeder
from processes import Proc, parse_json_line, proc_status
from testbed import Testbed


def scenario_memory(bench):
    want = bench.size(4 * GiB, 256 * MiB)
    size = want
    free = shutil.disk_usage(bench.work).free
    have = bench.data.joinpath(f"random-{size}.bin").exists()
    need = size * (1 if have else 2) + 2 * GiB
    while free < need and size > 64 * MiB:
        size //= 2
        need = size * 2 + 2 * GiB
    if size != want:
        bench.results["notes"].append(f"memory: only {free / GiB:.1f} GiB free: used {size / MiB:.0f} MiB "
                                      f"instead of {want / MiB:.0f} MiB")
    name = "memory.bin"
    base = bench.work / "memory"
    source = bench.data_file(size)
    log(f"== memory: peak RSS of a downloader ({size / MiB:.0f} MiB, loopback) and of a seeder serving 8 peers "
        f"(disk free {free / GiB:.1f} GiB)")
    share = base / "share"
    bench.share_with(share, name, size)
    res = {"download_size": size}
    procs = []
    try:
        seeder = start_seeder(bench, None, "lo", 47640, base / "seeder", share)
        procs.append(seeder)
        await_ready([seeder])
        rd = base / "get"
        argv = p2p_argv(bench, "get", "lo", 47640, rd, extra=(name, "--json", "--seed", "--timeout", 1800))
        g = Proc(argv, stdout=rd / "stdout", stderr=rd / "stderr")
        procs.append(g)
        peak_rss = 0
        deadline = time.monotonic() + 1900
        report = None
        while time.monotonic() < deadline and not g.poll():
            report = parse_json_line(g.stdout_text())
            if report:
                break
            peak_rss = max(peak_rss, proc_status(g.pid, "VmRSS") or 0)
            time.sleep(0.1)
        hwm = proc_status(g.pid, "VmHWM")
        g.stop(grace=10)
        problem = None if report else f"no report (exit {g.status}): {g.stderr_tail()}"
        problem = problem or bench.verify_copy(report["path"], source, size)
        res["downloader"] = {"vmhwm_kib": hwm, "ru_maxrss_kib": g.maxrss_kib, "sampled_max_vmrss_kib": peak_rss,
                             "seconds": (report or {}).get("seconds"), "ok": problem is None, "problem": problem}
        res["seeder_single"] = {"vmhwm_kib": proc_status(seeder.pid, "VmHWM")}
        bench.record("memory", f"get {size // MiB} MiB", "p2p VmHWM", 0,
                     f"{(hwm or 0) / 1024:.1f} MiB", problem is None)
    finally:
        for p in reversed(procs):
            p.stop()
        bench.cleanup_dir(base / "get")

    # A seeder serving 8 peers at once (unlimited links).
    size8 = bench.size(256 * MiB, 32 * MiB)
    source8 = bench.data_file(size8)
    share8 = base / "share8"
    bench.share_with(share8, "serve8.bin", size8)
    procs, tb = [], None
    try:
        tb = Testbed("bchr", 9)
        seeder = start_seeder(bench, tb.host(1), "eth0", 47641, base / "seeder8", share8)
        procs.append(seeder)
        await_ready([seeder])
        hwm_ready = proc_status(seeder.pid, "VmHWM")
        rfd, wfd = os.pipe()
        gets = []
        try:
            for k in range(8):
                d = base / "serve8" / f"d{k + 2}"
                argv = p2p_argv(bench, "get", "eth0", 47641, d, extra=("serve8.bin", "--json", "--timeout", 900))
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
        bench.record("memory", f"seeder, 8 peers", "p2p VmHWM", 0, f"{(hwm8 or 0) / 1024:.1f} MiB", okc == 8)
    finally:
        for p in reversed(procs):
            p.stop()
        if tb:
            tb.down()
        bench.cleanup_dir(base / "serve8")
    bench.results["scenarios"]["memory"] = res
