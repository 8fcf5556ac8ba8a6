#!/usr/bin/python3
"""A BitTorrent peer for the benchmark's BitTorrent reference (libtorrent-rasterbar, Debian's
python3-libtorrent), run by scripts/bench/run.py in a testbed host.

  bt.py torrent FILE OUT --piece-length BYTES
      writes a .torrent for FILE (libtorrent's default v1+v2 hybrid, no tracker)
  bt.py seed TORRENT --save DIR --listen ADDR:PORT [--stats FILE]
      checks DIR's copy of the file (every piece hashed), prints "ready", then seeds until
      SIGTERM; with --stats, keeps FILE (JSON, {"uploaded": bytes, "peers": n, "utp": n}) at
      the payload it has uploaded so far, five times a second, and at the peers it is connected
      to (and how many of them over uTP, not TCP), once a second
  bt.py get TORRENT --save DIR --listen ADDR:PORT --peer ADDR:PORT... [--timeout S] [--stats FILE]
      downloads from the peers given, prints one JSON line ({"seconds": ..., "size": ...}) once
      every piece has been downloaded and has passed its hash check, then goes on uploading to
      the others until SIGTERM (as `p2p get --seed` does); --stats as for seed

Only libtorrent's defaults, except what a LAN without a tracker needs: DHT, local peer
discovery, UPnP and NAT-PMP are off (nothing is sent anywhere but the peers given), and each
downloader is told every other peer's address, since there is no tracker to learn them from.
With those defaults libtorrent connects over uTP (on UDP) where it can, so counting a peer's
TCP sockets misses most of its links; --stats counts them all.
Every loop is bounded by --timeout.
"""
import argparse
import json
import os
import signal
import sys
import time

import libtorrent as lt


def session(listen):
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
    }
    return lt.session(settings)


def make_torrent(path, out, piece_length):
    storage = lt.file_storage()
    lt.add_files(storage, path)
    torrent = lt.create_torrent(storage, piece_length)
    lt.set_piece_hashes(torrent, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(torrent.generate()))


# peer_info::utp_socket (bit 17 of its flags in libtorrent 2.0); the Python binding has no name for it.
UTP_SOCKET = 1 << 17


def peer_counts(handle):
    """Peers connected (handshake done), and how many of them over uTP (UDP) rather than TCP."""
    peers = [p for p in handle.get_peer_info() if not p.flags & (lt.peer_info.connecting | lt.peer_info.handshake)]
    return {"peers": len(peers), "utp": sum(1 for p in peers if p.flags & UTP_SOCKET)}


def write_stats(path, stats):
    """Replaces `path` at once, so that a reader never sees half of it."""
    with open(f"{path}.new", "w") as f:
        json.dump(stats, f)
    os.replace(f"{path}.new", path)


def add(ses, torrent, save):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    return ses.add_torrent(params)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("torrent")
    t.add_argument("file")
    t.add_argument("out")
    t.add_argument("--piece-length", type=int, default=256 * 1024)
    for name in ("seed", "get"):
        p = sub.add_parser(name)
        p.add_argument("torrent")
        p.add_argument("--save", required=True)
        p.add_argument("--listen", required=True)
        p.add_argument("--timeout", type=float, default=600)
        p.add_argument("--stats")
        if name == "get":
            p.add_argument("--peer", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "torrent":
        make_torrent(a.file, a.out, a.piece_length)
        return 0

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    ses = session(a.listen)
    handle = add(ses, a.torrent, a.save)
    start = time.monotonic()
    deadline = start + a.timeout
    peers = []
    for p in getattr(a, "peer", []):
        host, port = p.rsplit(":", 1)
        peers.append((host, int(port)))
    announced = False
    next_connect = 0.0
    next_stats = 0.0
    next_counts = 0.0
    counts = {}
    while not stopping and time.monotonic() < deadline:
        now = time.monotonic()
        if peers and now >= next_connect:
            # Peers that were not listening yet are asked again (by address: a peer that
            # connected to this one did so from a port of its own).
            connected = {p.ip[0] for p in handle.get_peer_info()}
            for peer in peers:
                if peer[0] not in connected:
                    handle.connect_peer(peer)
            next_connect = now + 0.5
        ses.wait_for_alert(100)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert) or isinstance(alert, lt.file_error_alert):
                print(f"bt.py: {alert.message()}", file=sys.stderr, flush=True)
                return 1
        if not announced:
            status = handle.status()
            if a.cmd == "seed" and status.state == lt.torrent_status.seeding:
                print("ready", flush=True)
                announced = True
            elif a.cmd == "get" and status.is_seeding:
                print(json.dumps({"seconds": time.monotonic() - start, "size": status.total_wanted}), flush=True)
                announced = True
        if a.stats and now >= next_stats:
            if now >= next_counts:
                counts = peer_counts(handle)
                next_counts = now + 1.0
            write_stats(a.stats, {"uploaded": handle.status().total_payload_upload, **counts})
            next_stats = now + 0.2
    if not announced:
        print("bt.py: timed out", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
