#!/usr/bin/env python3
"""The benchmark runner behind scripts/bench.sh (SPEC §7, §9).

Runs inside the private network namespace bench.sh makes (loopback only, private
/run/netns), as root, with the release binary already built. Standard library only,
except the flash-crowd plot (matplotlib, imported when drawing).

Every scenario measures p2p and its reference in the same run, alternating, and
records each run. Results go to bench-results/<stamp>/: results.json (everything),
runs.tsv (one row per measured run), summary.md (the Markdown table, also printed),
flash.png (the plot).

Safety: traffic only on loopback and on testbed hosts 198.18.0.0/24 built with
scripts/testbed.sh; every wait is bounded in time; only processes started here are
signalled, by PID (and each child gets PR_SET_PDEATHSIG, so none outlives us).
"""

# Layout of scripts/bench/ (run.py imports its siblings; bench.sh runs it by path):
#   run.py               the entry point: arguments, the scenarios in order, the outputs
#   state.py             Bench, the run's shared state, passed to every function that needs it
#   processes.py         child processes (started, signalled and reaped by PID), /proc sampling
#   testbed.py           the namespace testbed (scripts/testbed.sh), rate limits
#   p2p.py               the program under test: command lines, seeders, one timed `get`
#   references.py        nginx and curl, iperf3, aria2c, BitTorrent (bt.py runs libtorrent)
#   delivery.py          `p2p send` to accepting targets, timed; test folders and their check
#   scenario_*.py        one module per scenario: single, encrypted, multi, flash, folder,
#                        memory, discovery, micro, and crowd (only when named)
#   report.py            results.json, runs.tsv, the Markdown table, the flash-crowd plot
#   common.py            paths, sizes, rates, logging, median (min–max)

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path

import processes
import report
from common import REPO, log
from processes import kill_all
from report import plot_flash, summarize
from scenario_crowd import scenario_crowd
from scenario_discovery import scenario_discovery
from scenario_encrypted import scenario_encrypted
from scenario_flash import scenario_flash
from scenario_folder import scenario_folder
from scenario_memory import scenario_memory
from scenario_micro import scenario_micro
from scenario_multi import scenario_multi
from scenario_single import scenario_single
from state import Bench
from testbed import down_all, rate_bps

SCENARIOS = ["single", "encrypted", "multi", "flash", "folder", "memory", "discovery", "micro", "crowd"]
# Run only when named: the 64-host crowd takes about 10 min a run.
OPT_IN = ["crowd"]
SCENARIO_FUNCS = {"encrypted": scenario_encrypted, "multi": scenario_multi, "flash": scenario_flash,
                  "folder": scenario_folder,
                  "memory": scenario_memory, "discovery": scenario_discovery, "micro": scenario_micro,
                  "crowd": scenario_crowd}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} "
                    f"(default: all but {', '.join(OPT_IN)})")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--trials", type=int)
    ap.add_argument("--flash-n", type=int, action="append")
    ap.add_argument("--crowd-n", type=int, help="downloaders in the crowd scenario (default: 63; 6 with --quick)")
    ap.add_argument("--crowd-rate", default="25mbit", help="every crowd host's egress limit (tc rate; default 25mbit)")
    ap.add_argument("--crowd-tools", default="p2p,mesh,bittorrent",
                    help="which crowds to run, comma-separated: p2p (the default overlay), mesh (--relay-partners 0), "
                         "bittorrent (default: all three)")
    ap.add_argument("--keep-logs", action="store_true", help="keep each run's folders (logs, downloads) under --work")
    ap.add_argument("--announce-interval", type=float, default=2.0)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--idle-wait", type=float, help="seconds to wait, before each measured run, for the machine "
                    "to be quiet (default: 0 with --quick, else 60)")
    ap.add_argument("--idle-threshold", type=float, default=0.3, help="cores busy that count as quiet")
    ap.add_argument("--no-warm", action="store_true", help="do not warm the page cache before to-disk runs")
    ap.add_argument("--p2p", default=str(REPO / ".build-release" / "release" / "p2p"))
    ap.add_argument("--results", default=str(REPO / "bench-results"))
    ap.add_argument("--work", default=str(REPO / "bench-results" / "work"))
    ap.add_argument("--data", default=str(REPO / "bench-results" / "data"))
    ap.add_argument("--plot-out", help="also copy the flash plot here")
    ap.add_argument("--pidfile")
    ap.add_argument("--summarize", help="print the table of an existing results.json and exit")
    args = ap.parse_args()
    if args.summarize:
        res = json.loads(Path(args.summarize).read_text())
        print(summarize(res))
        if args.plot_out and res["scenarios"].get("flash"):
            plot_flash(res["scenarios"]["flash"], args.plot_out)
        return 0
    scen = args.scenarios or [s for s in SCENARIOS if s not in OPT_IN]
    for s in scen:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    try:
        rate_bps(args.crowd_rate)
    except ValueError as e:
        ap.error(f"--crowd-rate: {e}")
    if args.crowd_n is not None and not 1 <= args.crowd_n <= 249:
        ap.error("--crowd-n: need 1..249 (the testbed has at most 250 hosts)")
    processes.PIDFILE = args.pidfile
    if args.idle_wait is None:
        args.idle_wait = 0.0 if args.quick else 60.0

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    b = Bench(args)
    b.machine()
    b.results["meta"]["page_cache_first_touch"] = b.probe_first_touch()
    b.results["meta"]["warm_before_runs"] = not args.no_warm
    log(f"page cache first-touch probe: {b.results['meta']['page_cache_first_touch']} "
        f"({'warming before each to-disk run' if not args.no_warm else 'no warming (--no-warm)'})")
    failed = []
    t_all = time.monotonic()
    try:
        for s in scen:
            t0 = time.monotonic()
            try:
                if s == "single":
                    scenario_single(b, "testbed")
                    scenario_single(b, "loopback")
                else:
                    SCENARIO_FUNCS[s](b)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one broken scenario does not stop the others
                import traceback
                traceback.print_exc()
                failed.append(s)
                b.results["notes"].append(f"scenario {s} failed: {e}")
            finally:
                kill_all()
                down_all()
                report.save(b)
            log(f"   ({s}: {time.monotonic() - t0:.0f} s)")
    finally:
        kill_all()
        down_all()
        b.results["meta"]["total_seconds"] = round(time.monotonic() - t_all, 1)
        report.save(b)
        if not args.keep_logs:
            shutil.rmtree(b.work, ignore_errors=True)
    png = report.plot(b)
    if png and args.plot_out:
        shutil.copy(png, args.plot_out)
    report.save(b)
    table = report.summary(b)
    (b.out / "summary.md").write_text(table + "\n")
    latest = Path(args.results) / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(b.out.name)
    meta = b.results["meta"]
    print(f"\n## p2p benchmarks ({'quick' if b.quick else 'full'}, {b.runs} run(s) each, "
          f"commit {meta['git_commit']}{'+dirty' if meta['git_dirty'] else ''}, {meta['date_utc']})\n")
    print(f"machine: {meta['cores']} cores, {meta['cpu']} ({' '.join(meta['cpu_flags'])}), "
          f"{meta['memory_gib']} GiB, Linux {meta['kernel']}; medians (min–max)\n")
    print(table)
    print(f"\nresults: {b.out}/ (results.json, runs.tsv, summary.md{', flash.png' if png else ''})")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        log(f"run.py: interrupted ({e}); partial results kept")
        sys.exit(130)
