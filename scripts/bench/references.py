"""The references p2p is measured against: nginx and curl, iperf3, aria2c, and the
BitTorrent reference (libtorrent, driven by bt.py in the testbed hosts)."""

import json
import os
import subprocess
import time
from pathlib import Path

from common import BT, BT_PORT
from processes import Proc, await_reports, crowd_problems, in_host, proc_cpu, run, start_together, wait_for_text


def start_nginx(host, addr, port, root, base):
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "nginx.conf"
    conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    server {{
        listen {addr}:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
    p = Proc(["nginx", "-p", f"{base}/", "-e", f"{base}/error.log", "-c", conf], host=host,
             stdout=base / "stdout", stderr=base / "stderr")
    # Ready when it answers (bounded: 50 tries).
    for _ in range(50):
        r = in_host(host, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1",
                           f"http://{addr}:{port}/"], check=False)
        if r.stdout.strip() in ("200", "403", "404"):
            return p
        if p.poll():
            break
        time.sleep(0.1)
    raise RuntimeError(f"nginx on {addr}:{port} did not start: {p.stderr_tail()} "
                       f"{(base / 'error.log').read_text() if (base / 'error.log').exists() else ''}")


def start_iperf_server(host, addr, port, base):
    base.mkdir(parents=True, exist_ok=True)
    p = Proc(["iperf3", "-s", "-B", addr, "-p", port, "--forceflush"], host=host,
             stdout=base / "iperf-server.out", stderr=base / "iperf-server.err")
    if not wait_for_text(base / "iperf-server.out", "Server listening", 10, p):
        raise RuntimeError(f"iperf3 server did not start: {p.stderr_tail()}")
    return p


def curl_once(bench, host, url, size, source, rundir, timeout=600, server_pids=()):
    rundir.mkdir(parents=True, exist_ok=True)
    out = rundir / "file"
    srv0 = sum(proc_cpu(p) or 0 for p in server_pids)
    c = Proc(["curl", "-sS", "--fail", "--max-time", timeout, "-o", out, "-w", "%{http_code} %{time_total}", url],
             host=host, stdout=rundir / "stdout", stderr=rundir / "stderr")
    c.wait(timeout + 30) or c.stop()
    srv1 = sum(proc_cpu(p) or 0 for p in server_pids)
    problem = None if c.status == 0 else f"curl exit {c.status}: {c.stderr_tail()}"
    problem = problem or bench.verify_copy(out, source, size)
    return {"wall": c.elapsed, "ok": problem is None, "problem": problem, "cpu": c.cpu_seconds,
            "cpu_pct": round(100 * c.cpu_seconds / c.elapsed, 1) if c.cpu_seconds is not None else None,
            "server_cpu": round(srv1 - srv0, 2), "server_cpu_pct": round(100 * (srv1 - srv0) / c.elapsed, 1)}


def iperf_once(host, addr, port, size, rundir):
    rundir.mkdir(parents=True, exist_ok=True)
    c = Proc(["iperf3", "-c", addr, "-p", port, "-n", size, "-J"], host=host,
             stdout=rundir / "iperf.json", stderr=rundir / "iperf.err")
    c.wait(300) or c.stop()
    try:
        j = json.loads(c.stdout_text())
        rx = j["end"]["sum_received"]
        cpu = j["end"].get("cpu_utilization_percent", {})
        seconds = rx["seconds"]
        client = cpu.get("host_total")
        server = cpu.get("remote_total")
        return {"wall": c.elapsed, "seconds": seconds, "bps": rx["bits_per_second"], "ok": True,
                "problem": None,
                "cpu": client * seconds / 100 if client is not None else None,
                "server_cpu": server * seconds / 100 if server is not None else None}
    except (ValueError, KeyError) as e:
        return {"wall": c.elapsed, "seconds": None, "bps": None, "ok": False, "problem": f"iperf3: {e}"}


def aria2_once(bench, host, urls, name, size, source, rundir, timeout=600):
    rundir.mkdir(parents=True, exist_ok=True)
    c = Proc(["aria2c", "--no-conf=true", "--console-log-level=warn", "--summary-interval=0",
              "--download-result=hide", "--file-allocation=none", "--allow-overwrite=true",
              "--auto-file-renaming=false", "--max-tries=3", "--timeout=30",
              f"--split={len(urls)}", "--max-connection-per-server=1", "--min-split-size=1M",
              "-d", rundir, "-o", name, *urls],
             host=host, stdout=rundir / "stdout", stderr=rundir / "stderr")
    c.wait(timeout) or c.stop()
    problem = None if c.status == 0 else f"aria2c exit {c.status}: {c.stderr_tail()} {c.stdout_text()[-500:]}"
    problem = problem or bench.verify_copy(rundir / name, source, size)
    return {"wall": c.elapsed, "ok": problem is None, "problem": problem, "cpu": c.cpu_seconds,
            "cpu_pct": round(100 * c.cpu_seconds / c.elapsed, 1) if c.cpu_seconds is not None else None}


def iperf_fanin_once(tb, senders, receiver, nbytes, rundir):
    """iperf3 -n nbytes from each sender host to the receiver at once (one stream
    each, released together): the transfer without any application, i.e. what TCP
    achieves through these tbf links. Servers on the receiver, ports 15301+."""
    rundir.mkdir(parents=True, exist_ok=True)
    servers = []
    try:
        for k, _ in enumerate(senders):
            servers.append(Proc(["iperf3", "-s", "-1", "-B", tb.addr(receiver), "-p", 15301 + k, "--forceflush"],
                                host=tb.host(receiver), stdout=rundir / f"s{k}.out", stderr=rundir / f"s{k}.err"))
        for k, srv in enumerate(servers):
            if not wait_for_text(rundir / f"s{k}.out", "Server listening", 10, srv):
                raise RuntimeError("iperf3 server did not start")
        rfd, wfd = os.pipe()
        clients = []
        try:
            for k, host in enumerate(senders):
                clients.append(Proc(["iperf3", "-c", tb.addr(receiver), "-p", 15301 + k, "-n", nbytes, "-J"],
                                    host=tb.host(host), stdout=rundir / f"c{k}.json", stderr=rundir / f"c{k}.err",
                                    barrier_fd=rfd))
        finally:
            os.close(rfd)
        time.sleep(0.3)
        t0 = time.monotonic()
        os.close(wfd)
        deadline = t0 + 300
        while time.monotonic() < deadline and not all([c.poll() for c in clients]):
            time.sleep(0.005)
        for c in clients:
            c.stop()
        ok = all(c.status == 0 for c in clients)
        last = max(c.t_end for c in clients if c.t_end) - t0
        rates = []
        for c in clients:
            try:
                rates.append(json.loads(c.stdout_text())["end"]["sum_received"]["bits_per_second"])
            except (ValueError, KeyError):
                ok = False
        return {"wall": last, "ok": ok, "problem": None if ok else "iperf3 failed",
                "mbps_each": [round(x / 1e6, 2) for x in rates]}
    finally:
        for srv in servers:
            srv.stop()


def flash_curl_once(bench, tb, n, url, size, source, rundir, timeout):
    """The N downloaders `curl` the file from the seeder's nginx, released together."""
    def fetch(k, barrier):
        d = rundir / f"c{k + 2}"
        d.mkdir(parents=True, exist_ok=True)
        return Proc(["curl", "-sS", "--fail", "--max-time", timeout, "-o", d / "file", url],
                    host=tb.host(k + 2), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
    cs, t0 = start_together(lambda barrier: [fetch(k, barrier) for k in range(n)])
    deadline = t0 + timeout + 30
    while time.monotonic() < deadline and not all([c.poll() for c in cs]):
        time.sleep(0.005)
    for c in cs:
        c.stop()
    problems = []
    for k, c in enumerate(cs):
        p = None if c.status == 0 else f"exit {c.status}"
        p = p or bench.verify_copy(rundir / f"c{k + 2}" / "file", source, size)
        if p:
            problems.append(f"curl {k + 2}: {p}")
    times = sorted(c.t_end - t0 for c in cs if c.t_end is not None)
    return {"last": max(times) if times and not problems else None, "times": times,
            "ok": not problems, "problem": "; ".join(problems) or None}


# ---------------------------------------------------------------- BitTorrent


def bittorrent_available():
    """Whether the BitTorrent reference can run (Debian's python3-libtorrent)."""
    return subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True).returncode == 0


def make_torrent(path, base, piece_length=256 * 1024):
    """A torrent of `path` (a file or a folder) for the BitTorrent reference: 256 KiB pieces
    unless told, as p2p's chunks."""
    base.mkdir(parents=True, exist_ok=True)
    torrent = base / f"{path.name}.torrent"
    run(["/usr/bin/python3", BT, "torrent", path, torrent, "--piece-length", piece_length], timeout=600)
    return torrent


def start_bt_seeder(tb, i, share, torrent, base):
    """A libtorrent peer on testbed host `i` seeding `torrent` from `share`, returned once
    it has hashed its copy. Its `stats_path` has what it has uploaded so far."""
    base.mkdir(parents=True, exist_ok=True)
    seeder = Proc(["/usr/bin/python3", BT, "seed", torrent, "--save", share,
                   "--listen", f"{tb.addr(i)}:{BT_PORT}", "--timeout", 4 * 3600, "--stats", base / "stats.json"],
                  host=tb.host(i), stdout=base / "stdout", stderr=base / "stderr")
    seeder.stats_path = base / "stats.json"
    if not wait_for_text(base / "stdout", "ready", 300, seeder):
        seeder.stop()
        raise RuntimeError(f"BitTorrent seeder on host {i} not ready: {seeder.stderr_tail(5)}")
    return seeder


def bt_uploaded(seeder):
    """What a BitTorrent seeder has uploaded so far (payload bytes), or None."""
    try:
        return json.loads(Path(seeder.stats_path).read_text())["uploaded"]
    except (OSError, ValueError, KeyError):
        return None


def bt_crowd_once(bench, tb, downloaders, peers, torrent, name, size, source, rundir, timeout, seeder=None,
                  verify=None, meter=None):
    """libtorrent downloaders on testbed hosts `downloaders`, released together, each given
    the address of every host in `peers` but its own (there is no tracker); done = its
    JSON line (every piece hash-checked). With `seeder`, also what it uploaded, per F;
    with `verify`, the copies are checked by it rather than against `source`; with `meter`
    (a CrowdMeter), the downloaders are measured from the release until they are done."""
    uploaded_before = bt_uploaded(seeder) if seeder else None
    def get(i, barrier):
        d = rundir / f"b{i}"
        d.mkdir(parents=True, exist_ok=True)
        argv = ["/usr/bin/python3", BT, "get", torrent, "--save", d,
                "--listen", f"{tb.addr(i)}:{BT_PORT}", "--timeout", timeout]
        for j in peers:
            if j != i:
                argv += ["--peer", f"{tb.addr(j)}:{BT_PORT}"]
        if meter:
            argv += ["--stats", d / "stats.json"]  # its own count of peers, TCP and uTP
        p = Proc(argv, host=tb.host(i), stdout=d / "stdout", stderr=d / "stderr", barrier_fd=barrier)
        if meter:
            p.stats_path = d / "stats.json"
        return p
    gets, t0 = start_together(lambda barrier: [get(i, barrier) for i in downloaders])
    if meter:
        meter.start(gets)
    done, reports = await_reports(gets, t0, t0 + timeout + 30)
    if meter:
        meter.done()
    paths = [rundir / f"b{i}" / name for i in downloaders]
    problems = crowd_problems(bench, gets, reports, paths, source, size, rundir, verify)
    times = sorted(t for t in done if t is not None and t == t)
    factor = None
    if uploaded_before is not None:
        time.sleep(0.5)  # the seeder's stats file is at most 0.2 s old
        after = bt_uploaded(seeder)
        factor = (after - uploaded_before) / size if after is not None else None
    return {"last": max(times) if times and not problems else None, "times": times,
            "seeder_upload_factor": factor, "ok": not problems, "problem": "; ".join(problems) or None,
            "failed_downloads": len(problems)}
