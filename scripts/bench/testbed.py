"""The network-namespace testbed (scripts/testbed.sh, SPEC §9): hosts on one bridge,
198.18.0.0/24, with optional tbf rate limits on their egress."""

import os
import re
from pathlib import Path

from common import TESTBED, log
from processes import in_host, run

CHILD_EHASH = Path("/proc/sys/net/ipv4/tcp_child_ehash_entries")


class Testbed:
    ACTIVE = []

    def __init__(self, name, n, rate=None, tcp_ehash=None):
        """With `tcp_ehash`, each host gets a TCP hash table of its own with that many buckets
        (net.ipv4.tcp_child_ehash_entries, set only while the hosts are made, and only in the
        private namespace bench.sh runs us in) rather than sharing the machine's: reading a
        host's /proc/net/tcp then walks its table, not the machine's 262,144 buckets (~3 ms)."""
        self.name, self.n = name, n
        args = [TESTBED, "up", name, n] + (["--rate", rate] if rate else [])
        run(["bash", TESTBED, "down", name], timeout=120, check=False)
        Testbed.ACTIVE.append(self)
        old = None
        if tcp_ehash and os.environ.get("P2P_BENCH_ISOLATED") == "1" and CHILD_EHASH.exists():
            old = CHILD_EHASH.read_text().strip()
            CHILD_EHASH.write_text(f"{tcp_ehash}\n")
        try:
            run(["bash", *args], timeout=300)
        finally:
            if old is not None:
                CHILD_EHASH.write_text(f"{old}\n")
        # Negative: the host shares the machine's table (of that many buckets).
        r = in_host(self.host(1), ["cat", "/proc/sys/net/ipv4/tcp_ehash_entries"], check=False)
        self.tcp_ehash = int(r.stdout) if r.stdout.strip().lstrip("-").isdigit() else None
        ehash = ""
        if tcp_ehash:
            ehash = (f", a TCP hash table of {self.tcp_ehash} buckets each" if self.tcp_ehash and self.tcp_ehash > 0
                     else ", the machine's TCP hash table")
        log(f"  testbed {name}: {n} hosts{', egress ' + rate if rate else ''}{ehash}")

    def rate(self, i, rate):
        run(["bash", TESTBED, "rate", self.name, i, rate], timeout=60)

    def host(self, i):
        return (self.name, i)

    @staticmethod
    def addr(i):
        return f"198.18.0.{i}"

    def down(self):
        run(["bash", TESTBED, "down", self.name], timeout=120, check=False)
        if self in Testbed.ACTIVE:
            Testbed.ACTIVE.remove(self)


def down_all():
    for tb in list(Testbed.ACTIVE):
        tb.down()


def rate_bps(rate):
    """Bits per second of a tc rate ("25mbit", "1gbit", "500kbit"; "mbps" is bytes, as in tc)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)((?:[kmgt]i?)?)(bit|bps)?", rate.strip().lower())
    if not m:
        raise ValueError(f"not a tc rate: {rate!r} (e.g. 25mbit)")
    prefix = m.group(2)
    scale = (1024 if prefix.endswith("i") else 1000) ** " kmgt".index(prefix[:1] or " ")
    return float(m.group(1)) * scale * (8 if m.group(3) == "bps" else 1)
