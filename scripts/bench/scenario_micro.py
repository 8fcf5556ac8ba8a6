"""Micro benchmarks: the release build's `p2p-microbench`, if the tree has that product."""

from common import REPO, log
from processes import run


def scenario_micro(bench):
    exe = REPO / ".build-release" / "release" / "p2p-microbench"
    if "p2p-microbench" not in (REPO / "Package.swift").read_text() or not exe.exists():
        note = "micro: no p2p-microbench product in this tree (skipped)"
        log(f"== {note}")
        bench.results["scenarios"]["micro"] = {"skipped": note}
        return
    log("== micro: p2p-microbench")
    r = run([exe], timeout=1200, check=False)
    bench.results["scenarios"]["micro"] = {"exit": r.returncode, "output": r.stdout + r.stderr}
    log(r.stdout)
