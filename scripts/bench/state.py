"""Bench: the state one run of the runner shares between its modules (the arguments,
the output, work and data folders, the results so far), and its bookkeeping: test files,
copies checked against their source, the machine's load metered around each measured run,
each run recorded, the machine described."""

import datetime
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

from common import MiB, REPO, log
from processes import busy_cores, cpu_snap, run


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs or (1 if args.quick else 3)
        self.p2p = Path(args.p2p).resolve()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = Path(args.results) / (stamp + ("-quick" if self.quick else ""))
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) / stamp
        self.work.mkdir(parents=True, exist_ok=True)
        self.data = Path(args.data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.results = {"meta": {}, "scenarios": {}, "notes": []}
        self.tsv = []

    def size(self, full, quick):
        return quick if self.quick else full

    def data_file(self, size):
        """A file of `size` random bytes, made once and kept in the data folder."""
        path = self.data / f"random-{size}.bin"
        if not path.exists() or path.stat().st_size != size:
            log(f"  making {path.name} ({size / MiB:.0f} MiB of random bytes)")
            tmp = path.with_suffix(".tmp")
            with open("/dev/urandom", "rb") as src, open(tmp, "wb") as dst:
                left = size
                while left:
                    block = src.read(min(left, 4 * MiB))
                    dst.write(block)
                    left -= len(block)
            tmp.rename(path)
        return path

    def share_with(self, folder, name, size):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            os.link(self.data_file(size), target)
        return target

    def verify_copy(self, path, source, size):
        """Size and the first and last MiB match the source (p2p verifies every chunk itself)."""
        path = Path(path)
        if not path.exists():
            return f"missing {path}"
        if path.stat().st_size != size:
            return f"size {path.stat().st_size} != {size}"
        with open(path, "rb") as a, open(source, "rb") as b:
            for off in (0, max(0, size - MiB)):
                a.seek(off)
                b.seek(off)
                if a.read(MiB) != b.read(MiB):
                    return f"content differs at {off}"
        return None

    def cleanup_dir(self, d):
        if self.args.keep_logs:
            return
        shutil.rmtree(d, ignore_errors=True)
        run(["sync"], timeout=120, check=False)

    def meter_start(self, warm=0):
        """Before a measured run: wait (bounded) for the machine to be quiet, remember
        the background load, warm the page cache for `warm` bytes of writes, and start
        counting the machine's busy CPU."""
        bg = self.quiet()
        if warm and not self.args.no_warm:
            self.warm_memory(int(warm * 1.1))
        self._meter = (bg, cpu_snap())

    def warm_memory(self, nbytes):
        """Writes and deletes a scratch file of nbytes in the work folder, so that the
        run that follows writes into page-cache pages the hypervisor has backed.

        On this VM, memory the guest frees is handed back to the host within seconds
        (virtio-balloon free page reporting); the next first touch of such a page costs
        a host fault: writing 1 GiB into the page cache took ~2 s of system time cold
        against ~0.35 s right after the same amount was written and freed. Without this
        step the to-disk figures measure that, unevenly between tools."""
        path = self.work / "warm.scratch"
        block = bytes(4 * MiB)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = nbytes
            while left > 0:
                left -= os.write(fd, block[:min(left, len(block))])
        finally:
            os.close(fd)
            os.unlink(path)

    def probe_first_touch(self):
        """Seconds of writing 256 MiB into the page cache cold (after 4 s idle) and warm."""
        def write_once():
            path = self.work / "probe.scratch"
            block = bytes(4 * MiB)
            t = time.monotonic()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            for _ in range(64):
                os.write(fd, block)
            os.close(fd)
            dt = time.monotonic() - t
            os.unlink(path)
            return dt
        time.sleep(4)
        cold = write_once()
        warm = write_once()
        return {"cold_s_per_gib": round(cold * 4, 2), "warm_s_per_gib": round(warm * 4, 2)}

    def quiet(self):
        """Cores busy over 1 s while nothing of ours runs; waits up to --idle-wait
        seconds (bounded) for fewer than --idle-threshold cores busy."""
        deadline = time.monotonic() + self.args.idle_wait
        while True:
            a = cpu_snap()
            time.sleep(1)
            bg = busy_cores(a, cpu_snap())
            if bg is None or bg < self.args.idle_threshold or time.monotonic() >= deadline:
                return bg
            time.sleep(2)

    def record(self, scenario, variant, tool, run_i, seconds, ok, **extra):
        row = {"scenario": scenario, "variant": variant, "tool": tool, "run": run_i,
               "seconds": seconds, "ok": ok, **extra}
        if getattr(self, "_meter", None):
            row["bg_cores_before"] = self._meter[0]
            row["busy_cores_during"] = busy_cores(self._meter[1], cpu_snap())
            self._meter = None
        self.tsv.append(row)
        mark = "" if ok else "  FAILED"
        if isinstance(seconds, (int, float)):
            log(f"    {variant:<14} {tool:<16} run {run_i}: {seconds:8.3f} s{mark}")
        else:
            log(f"    {variant:<14} {tool:<16} run {run_i}: {seconds}{mark}")
        return row

    def machine(self):
        cpu = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", cpu)
        flags = set((re.search(r"flags\s*:\s*(.*)", cpu) or ["", ""])[1].split())
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())

        def ver(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
                return (r.stdout + r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return None

        git = lambda *a: (subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True).stdout.strip())
        self.results["meta"] = {
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": self.quick, "runs": self.runs,
            "cores": os.cpu_count(), "cpu": model.group(1) if model else platform.processor(),
            "cpu_flags": sorted(flags & {"sha_ni", "aes", "vaes", "avx2", "avx512f", "pclmulqdq", "vpclmulqdq"}),
            "memory_gib": round(int(mem.group(1)) / (1 << 20), 1) if mem else None,
            "kernel": platform.release(),
            "tcp_congestion_control": Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip(),
            "git_commit": git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "p2p": str(self.p2p),
            "versions": {
                "swift": ver(["swift", "--version"]), "nginx": ver(["nginx", "-v"]), "curl": ver(["curl", "--version"]),
                "iperf3": ver(["iperf3", "--version"]), "aria2c": ver(["aria2c", "--version"]),
                "libtorrent": ver(["/usr/bin/python3", "-c", "import libtorrent; print(libtorrent.__version__)"]),
            },
        }
