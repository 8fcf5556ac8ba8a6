#!/usr/bin/env python3
"""What it costs one peer to hear a large swarm (SPEC §12: quiet discovery at scale).

Starts one `p2p serve` on loopback only (`--interface lo`) and makes it hear N other
peers (default 1,000): N made-up peer ids, spread over 16 loopback source addresses
(127.0.1.1-16, because the peer table takes at most 64 ids from one address), each of
which broadcasts `start` once and then `alive` every announce interval to 127.255.255.255,
as real peers would. Measures, after a warm-up:

- the peer's CPU-seconds per second (utime + stime from /proc/PID/stat) and its RSS
  (VmRSS, VmHWM), beside the same peer hearing nobody;
- how many peers an observer (`p2p peers --json`) lists;
- how the peer's answers to the `start`s arrive over time: they are spread over a short
  random window, not sent all at once.

Every datagram goes to loopback (127.0.0.0/8); nothing leaves the machine. Every wait is
bounded. Usage:

    scripts/discovery-load.py [--peers N] [--seconds S] [--interval S] [--binary PATH]

The binary defaults to .build/release/p2p if it exists, else .build/debug/p2p (a debug
build costs several times the CPU of a release one: say which one a figure comes from).
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

MAGIC = b"P2PD"
VERSION = 2
START, ALIVE = 1, 2
SOURCES = 16


def checksum(data: bytes) -> int:
    """RFC 1071 over big-endian 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def announcement(kind: int, peer_id: bytes, port: int, interval_ms: int) -> bytes:
    """An unkeyed discovery datagram (Sources/P2P/Wire/Announcement.swift): no name, no
    exchanged peers."""
    body = bytearray(MAGIC + struct.pack("!BBH", VERSION, kind, 0) + peer_id + struct.pack("!HIBB", port, interval_ms, 0, 0))
    struct.pack_into("!H", body, 6, checksum(bytes(body)))
    return bytes(body)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def memory_kib(pid: int) -> dict:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_peer(binary: str, folder: str, port: int, interval: float, extra=()) -> subprocess.Popen:
    for sub in ("shared", "downloads", ".p2p"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    arguments = [
        binary, *extra, "--interface", "lo", "--port", "0", "--discovery-port", str(port),
        "--announce-interval", str(interval), "--share", "shared", "--downloads", "downloads",
        "--state", ".p2p", "--distribute-interval", "0",
    ]
    log = open(os.path.join(folder, "stderr.log"), "w")
    return subprocess.Popen(arguments, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=log, text=True)


def wait_ready(folder: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    path = os.path.join(folder, "stderr.log")
    while time.monotonic() < deadline:
        with open(path) as f:
            if "peer ready" in f.read():
                return
        time.sleep(0.1)
    raise SystemExit(f"the peer did not start within {timeout} s; see {path}")


def measure(pid: int, seconds: float, during=None) -> dict:
    """CPU-seconds per second and memory over `seconds`, calling `during(now)` often."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        if during:
            during(time.monotonic())
        else:
            time.sleep(0.05)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return {"cpu_per_second": (cpu1 - cpu0) / (t1 - t0), **memory_kib(pid)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--binary")
    options = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = os.path.abspath(options.binary) if options.binary else next(
        (p for p in (os.path.join(root, ".build/release/p2p"), os.path.join(root, ".build/debug/p2p"))
         if os.path.exists(p)), None)
    if not binary:
        raise SystemExit("no p2p binary: swift build first, or give --binary")
    if options.peers > SOURCES * 63:
        raise SystemExit(f"at most {SOURCES * 63} peers (63 per source address)")
    rng = random.Random(1)
    port = free_udp_port()
    interval_ms = int(options.interval * 1000)
    results = {"binary": binary, "peers": options.peers, "interval_s": options.interval}

    with tempfile.TemporaryDirectory(prefix="p2p-discovery-load-") as folder:
        peer = start_peer(binary, os.path.join(folder, "peer"), port, options.interval, ["serve"])
        try:
            wait_ready(os.path.join(folder, "peer"))
            time.sleep(2)
            results["alone"] = measure(peer.pid, min(10.0, options.seconds))

            # The made-up swarm: one socket per source address.
            sockets = []
            for index in range(SOURCES):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                s.bind((f"127.0.1.{index + 1}", 0))
                s.setblocking(False)
                sockets.append(s)
            ids = [rng.randbytes(16) for _ in range(options.peers)]
            target = ("127.255.255.255", port)
            answers = []  # arrival times of the peer's answers, after the starts went out

            def drain(now):
                readable, _, _ = select.select(sockets, [], [], 0)
                for s in readable:
                    for _ in range(1000):
                        try:
                            s.recvfrom(2048)
                        except BlockingIOError:
                            break
                        answers.append(now)

            # Every made-up peer says `start` at once (a flash crowd joining), then `alive`
            # once per interval, each at its own phase.
            starts_sent = time.monotonic()
            for number, peer_id in enumerate(ids):
                sockets[number % SOURCES].sendto(announcement(START, peer_id, 9, interval_ms), target)
            phases = [rng.random() * options.interval for _ in ids]
            next_send = [starts_sent + phase for phase in phases]
            sent = [options.peers]

            def tick(now):
                drain(now)
                for number, due in enumerate(next_send):
                    if due <= now:
                        sockets[number % SOURCES].sendto(announcement(ALIVE, ids[number], 9, interval_ms), target)
                        next_send[number] = due + options.interval
                        sent[0] += 1
                time.sleep(0.002)

            # Warm-up: the starts are answered and the table fills.
            warm = time.monotonic()
            while time.monotonic() - warm < 3:
                tick(time.monotonic())
            spread = sorted(t - starts_sent for t in answers)
            results["answers_to_starts"] = {
                "count": len(spread),
                "first_ms": round(spread[0] * 1000, 1) if spread else None,
                "median_ms": round(spread[len(spread) // 2] * 1000, 1) if spread else None,
                "last_ms": round(spread[-1] * 1000, 1) if spread else None,
            }
            results["hearing"] = measure(peer.pid, options.seconds, tick)
            results["datagrams_sent_to_peer"] = sent[0]

            # An observer listens for three seconds while the made-up swarm goes on announcing.
            listing = open(os.path.join(folder, "observer.json"), "w+")
            observer = subprocess.Popen(
                [binary, "peers", "--json", "--wait", "3", "--interface", "lo", "--discovery-port", str(port)],
                cwd=folder, stdin=subprocess.DEVNULL, stdout=listing, stderr=subprocess.DEVNULL, text=True)
            deadline = time.monotonic() + 60
            while observer.poll() is None and time.monotonic() < deadline:
                tick(time.monotonic())
            if observer.poll() is None:
                observer.kill()
            observer.wait(timeout=10)
            listing.seek(0)
            output = listing.read()
            listing.close()
            try:
                results["observer_lists"] = len(json.loads(output))
            except ValueError:
                results["observer_lists"] = f"unreadable: {output[:200]!r}"
            for s in sockets:
                s.close()
        finally:
            peer.terminate()
            try:
                peer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait(timeout=10)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
