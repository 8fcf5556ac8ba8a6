"""The network-namespace testbed (scripts/testbed.sh, SPEC §9): hosts on one bridge,
198.18.0.0/24, with optional tbf rate limits on their egress."""

from common import TESTBED, log
from processes import run


class Testbed:
    ACTIVE = []

    def __init__(self, name, n, rate=None):
        self.name, self.n = name, n
        args = [TESTBED, "up", name, n] + (["--rate", rate] if rate else [])
        run(["bash", TESTBED, "down", name], timeout=120, check=False)
        Testbed.ACTIVE.append(self)
        run(["bash", *args], timeout=300)
        log(f"  testbed {name}: {n} hosts{', egress ' + rate if rate else ''}")

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
