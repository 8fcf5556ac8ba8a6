"""What every module of the benchmark runner shares: paths, sizes, the links' rates, the
RSS target, logging and the median (min–max) of a set of runs."""

import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "scripts" / "testbed.sh"
# The BitTorrent reference: libtorrent-rasterbar through Debian's python3-libtorrent.
BT = REPO / "scripts" / "bench" / "bt.py"
BT_PORT = 6881
PAYLOAD_BPS = 100e6 * 1448 / 1514  # 95.64 Mbit/s of TCP payload through tbf at 100mbit
NOMINAL_BPS = 100e6
KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
RSS_TARGET_KIB = 64 * 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def per_gib(cpu_seconds, size):
    """CPU-seconds per GiB moved, or None when the CPU was not measured."""
    if cpu_seconds is None:
        return None
    return cpu_seconds / (size / GiB)


def pair_per_gib(runs, size, client="cpu", server="seeder_cpu"):
    """Median (min–max) CPU-seconds per GiB of client and server together, and of each."""
    good = [x for x in runs if x["ok"] and x.get(client) is not None and x.get(server) is not None]
    return {
        "pair": median_range([per_gib(x[client] + x[server], size) for x in good]),
        "client": median_range([per_gib(x[client], size) for x in good]),
        "server": median_range([per_gib(x[server], size) for x in good]),
    }


def median_range(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
