"""What a run leaves behind: results.json and runs.tsv, the Markdown table (summary.md and
stdout, also for --summarize), and the flash-crowd plot."""

import json
import os
import statistics

from common import GiB, MiB, RSS_TARGET_KIB


def save(bench):
    bench.results["rows"] = bench.tsv
    (bench.out / "results.json").write_text(json.dumps(bench.results, indent=1, default=str))
    cols = ["scenario", "variant", "tool", "run", "seconds", "ok"]
    with open(bench.out / "runs.tsv", "w") as f:
        f.write("\t".join(cols + ["extra"]) + "\n")
        for row in bench.tsv:
            extra = {k: v for k, v in row.items() if k not in cols}
            f.write("\t".join(str(row[c]) for c in cols) + "\t" + json.dumps(extra, default=str) + "\n")


def summary(bench):
    return summarize(bench.results)


def plot(bench):
    fl = bench.results["scenarios"].get("flash")
    if not fl:
        return None
    path = bench.out / "flash.png"
    try:
        plot_flash(fl, path)
    except Exception as e:  # matplotlib missing or failing: the numbers still stand
        bench.results["notes"].append(f"plot not drawn: {e}")
        return None
    return path


def fmt_mr(m, unit="s", digits=2, scale=1.0):
    """median (min–max) of a median_range dict."""
    if not m:
        return "—"
    u = f" {unit}" if unit else ""
    med = f"{m['median'] * scale:.{digits}f}{u}"
    if m["n"] == 1:
        return med
    return f"{med} ({m['min'] * scale:.{digits}f}–{m['max'] * scale:.{digits}f})"


def cpu_gib(c, client, server):
    """'CPU per GiB: client X + server Y = Z s' from a pair_per_gib dict, or ''."""
    if not c or not c.get("pair"):
        return ""
    return (f"CPU per GiB: {client} {fmt_mr(c['client'], '', 2)} + {server} {fmt_mr(c['server'], '', 2)} "
            f"= {fmt_mr(c['pair'], 's', 2)}")


def ratio(a, b):
    if not a or not b:
        return "—"
    x = a["median"] if isinstance(a, dict) else a
    y = b["median"] if isinstance(b, dict) else b
    return f"{x / y:.2f}×"


def mbps(size, m):
    return f"{size / m['median'] / 1e6:.0f} MB/s" if m else "—"


def fail_note(n, what):
    return f" **{n} {what} failed**" if n else ""


def load_note(results, scenario, variant=None):
    """Other processes' CPU before the runs of a scenario (cores busy), to flag noisy figures."""
    rows = [r for r in results.get("rows", []) if r["scenario"] == scenario
            and (variant is None or r["variant"] == variant) and r.get("bg_cores_before") is not None]
    if not rows:
        return "—"
    bg = [r["bg_cores_before"] for r in rows]
    busy = [r["busy_cores_during"] for r in rows if r.get("busy_cores_during") is not None]
    text = f"{statistics.median(bg):.1f} (max {max(bg):.1f})"
    if busy:
        text += f"; during {statistics.median(busy):.1f} of {os.cpu_count()}"
    return text


def summarize(results):
    sc = results["scenarios"]
    lines = ["| scenario | p2p | reference | ratio | target | other load before runs, cores busy |",
             "|---|---|---|---|---|---|"]
    for where in ("testbed", "loopback"):
        s = sc.get(f"single-{where}")
        if not s:
            continue
        size = s["size"]
        lbl = f"single source, {where}, {size / MiB:.0f} MiB, to disk"
        p2p = (f"{fmt_mr(s['p2p_wall'])} = {mbps(size, s['p2p_wall'])} (get's own `seconds`: "
               f"{fmt_mr(s['p2p_seconds'])}); CPU get {fmt_mr(s['p2p_cpu_pct'], '%', 0)}, seeder "
               f"{fmt_mr(s['seeder_cpu_pct'], '%', 0)}{fail_note(s['p2p_failures'], 'runs')}")
        if s.get("p2p_cpu_per_gib"):
            p2p += "; " + cpu_gib(s["p2p_cpu_per_gib"], "get", "seeder")
        ref = (f"curl from nginx {fmt_mr(s['curl'])} = {mbps(size, s['curl'])} (CPU curl "
               f"{fmt_mr(s['curl_cpu_pct'], '%', 0)}, nginx {fmt_mr(s['nginx_cpu_pct'], '%', 0)}); "
               f"iperf3 1 stream {fmt_mr(s['iperf3'])} = {mbps(size, s['iperf3'])}{fail_note(s['curl_failures'], 'curl runs')}")
        for label, c, client, server in (("curl + nginx", s.get("curl_cpu_per_gib"), "curl", "nginx"),
                                         ("iperf3", s.get("iperf3_cpu_per_gib"), "client", "server")):
            if cpu_gib(c, client, server):
                ref += f"; {label} {cpu_gib(c, client, server)}"
        rat = f"{ratio(s['p2p_wall'], s['curl'])} curl; {ratio(s['p2p_wall'], s['iperf3'])} iperf3"
        lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.00× curl | {load_note(results, f'single-{where}')} |")
    e = sc.get("encrypted")
    if e:
        size = e["size"]
        lbl = f"encrypted (`--secret`) vs plaintext, loopback, {size / MiB:.0f} MiB, to disk"
        def side(v):
            return (f"{fmt_mr(e[f'{v}_wall'])} = {mbps(size, e[f'{v}_wall'])} (`seconds`: "
                    f"{fmt_mr(e[f'{v}_seconds'])}); CPU get "
                    f"{fmt_mr(e[f'{v}_cpu'])}, seeder {fmt_mr(e[f'{v}_seeder_cpu'])}"
                    f"{fail_note(e[f'{v}_failures'], 'runs')}"
                    + (f"; {cpu_gib(e[f'{v}_cpu_per_gib'], 'get', 'seeder')}" if e.get(f"{v}_cpu_per_gib") else ""))
        enc = side("encrypted")
        plain = "plaintext " + side("plaintext")
        rat = (f"throughput {fmt_mr(e['ratio_wall'], '×')} of plaintext (`seconds`: "
               f"{fmt_mr(e['ratio_seconds'], '×')}), per pair of runs")
        lines.append(f"| {lbl} | {enc} | {plain} | {rat} | ≥ 0.70× plaintext | {load_note(results, 'encrypted')} |")
    m = sc.get("multi")
    if m:
        lbl = f"multi source, 4 × 100 Mbit/s, {m['size'] / MiB:.0f} MiB"
        p2p = f"{fmt_mr(m['p2p_wall'])} (`seconds`: {fmt_mr(m['p2p_seconds'])}){fail_note(m['p2p_failures'], 'runs')}"
        if m.get("p2p_cpu_per_gib"):
            p2p += "; " + cpu_gib(m["p2p_cpu_per_gib"], "get", "4 seeders")
        ref = (f"bound {m['bound_payload']:.2f} s payload / {m['bound_nominal']:.2f} s nominal; aria2c 4 mirrors "
               f"{fmt_mr(m['aria2c'])} ({ratio(m['aria2c'], m['bound_payload'])} payload bound)"
               + (f"; iperf3, 4 hosts × F/4 at once {fmt_mr(m['iperf3'])} ({ratio(m['iperf3'], m['bound_payload'])})"
                  if m.get("iperf3") else "")
               + f"{fail_note(m['aria2c_failures'], 'aria2c runs')}"
               + (f" (CPU per GiB: aria2c {fmt_mr(m['aria2c_cpu_per_gib'], 's', 2)})"
                  if m.get("aria2c_cpu_per_gib") else ""))
        if m.get("bittorrent"):
            ref += (f"; BitTorrent (libtorrent, 4 seeders) {fmt_mr(m['bittorrent'])} "
                    f"({ratio(m['bittorrent'], m['bound_payload'])} payload bound)"
                    f"{fail_note(m['bittorrent_failures'], 'BitTorrent runs')}")
        rat = (f"{ratio(m['p2p_wall'], m['bound_payload'])} payload, {ratio(m['p2p_wall'], m['bound_nominal'])} "
               f"nominal; {ratio(m['p2p_wall'], m['aria2c'])} aria2c"
               + (f"; {ratio(m['p2p_wall'], m['bittorrent'])} BitTorrent" if m.get("bittorrent") else ""))
        lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.015× payload | {load_note(results, 'multi')} |")
    fl = sc.get("flash")
    if fl:
        for key in sorted((k for k in fl if k.isdigit()), key=int):
            f = fl[key]
            lbl = f"flash crowd, 1 + {f['n']}, 100 Mbit/s each, {f['size'] / MiB:.0f} MiB, last done"
            p2p = f"{fmt_mr(f['p2p'])}{fail_note(f['p2p_failures'], 'runs')}"
            if f.get("seeder_upload_factor"):
                p2p += f"; seeder uploaded {fmt_mr(f['seeder_upload_factor'], '', 2)} × F"
            ref = (f"Kumar–Ross bound {f['bound_payload']:.2f} s payload / {f['bound_nominal']:.2f} s nominal; "
                   f"all curl from one nginx {fmt_mr(f['curl'])} ({ratio(f['curl'], f['bound_payload'])} bound)"
                   f"{fail_note(f['curl_failures'], 'curl runs')}")
            cal = fl.get("iperf3_one_uplink")
            if cal and cal.get("ok"):
                ref += (f"; iperf3, F through one uplink: {cal['wall']:.2f} s "
                        f"({cal['mbps_each'][0] if cal['mbps_each'] else 0:.1f} Mbit/s)")
            if f.get("bittorrent"):
                ref += (f"; BitTorrent (libtorrent, 256 KiB pieces) {fmt_mr(f['bittorrent'])} "
                        f"({ratio(f['bittorrent'], f['bound_payload'])} bound"
                        + (f", seeder uploaded {fmt_mr(f['bittorrent_seeder_upload_factor'], '', 2)} × F"
                           if f.get("bittorrent_seeder_upload_factor") else "") + ")"
                        f"{fail_note(f['bittorrent_failures'], 'BitTorrent runs')}")
            rat = (f"{ratio(f['p2p'], f['bound_payload'])} payload, {ratio(f['p2p'], f['bound_nominal'])} nominal; "
                   f"{ratio(f['p2p'], f['curl'])} curl"
                   + (f"; {ratio(f['p2p'], f['bittorrent'])} BitTorrent" if f.get("bittorrent") else ""))
            lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ 1.10× payload | {load_note(results, 'flash', f'N={key}')} |")
            if f.get("send") or f.get("send_failures"):
                lbl = (f"send, 1 → {f['n']} accepting targets (`p2p send --to`, keyed, so encrypted), "
                       f"100 Mbit/s each, {f['size'] / MiB:.0f} MiB, until every receipt")
                p2p = f"{fmt_mr(f['send'])}{fail_note(f['send_failures'], 'runs')}"
                if f.get("send_cpu"):
                    p2p += f"; CPU of sender and targets {fmt_mr(f['send_cpu'])}"
                ref = (f"as the flash crowd above, same runs: bound {f['bound_payload']:.2f} s payload; "
                       f"curl {fmt_mr(f['curl'])}" + (f"; BitTorrent {fmt_mr(f['bittorrent'])}" if f.get("bittorrent") else "")
                       + f"; p2p get --seed {fmt_mr(f['p2p'])}")
                rat = (f"bound + {f['send']['median'] - f['bound_payload']:.2f} s; "
                       f"{ratio(f['send'], f['bound_payload'])} payload; {ratio(f['send'], f['curl'])} curl"
                       + (f"; {ratio(f['send'], f['bittorrent'])} BitTorrent" if f.get("bittorrent") else "")
                       if f.get("send") else "—")
                lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | ≤ bound + 1 s | "
                             f"{load_note(results, 'flash', f'N={key}')} |")
    cr = sc.get("crowd")
    if cr:
        lines += crowd_rows(results, cr)
    fo = sc.get("folder")
    if fo:
        lbl = (f"folder of {fo['files']} files ({fo['size'] / MiB:.1f} MiB, 1–64 KiB each), 1 → {fo['n']} "
               f"accepting targets (`p2p send`), 100 Mbit/s each")
        p2p = f"{fmt_mr(fo['send'])}{fail_note(fo['send_failures'], 'runs')}"
        if fo.get("send_cpu"):
            p2p += f"; CPU of sender and targets {fmt_mr(fo['send_cpu'])}"
        ref = (f"Kumar–Ross bound {fo['bound_payload']:.2f} s payload; every target pulling every file from one "
               f"nginx (curl, one connection each) {fmt_mr(fo['curl'])}{fail_note(fo['curl_failures'], 'curl runs')}"
               + (f"; BitTorrent (libtorrent, one torrent, 16 KiB pieces) {fmt_mr(fo['bittorrent'])}"
                  f"{fail_note(fo['bittorrent_failures'], 'BitTorrent runs')}" if fo.get("runs", {}).get("bittorrent")
                  else ""))
        rat = (f"{ratio(fo['send'], fo['bound_payload'])} payload bound; {ratio(fo['send'], fo['curl'])} curl"
               + (f"; {ratio(fo['send'], fo['bittorrent'])} BitTorrent" if fo.get("bittorrent") else ""))
        lines.append(f"| {lbl} | {p2p} | {ref} | {rat} | < 3 s | {load_note(results, 'folder')} |")
    mem = sc.get("memory")
    if mem:
        d = mem.get("downloader") or {}
        hwm = d.get("vmhwm_kib")
        lines.append(f"| memory: peak RSS (VmHWM) downloading {mem['download_size'] / MiB:.0f} MiB | "
                     f"{(hwm or 0) / 1024:.1f} MiB{'' if d.get('ok') else ' **download failed**'} "
                     f"(seeder: {(mem.get('seeder_single', {}).get('vmhwm_kib') or 0) / 1024:.1f} MiB) | 64 MiB target | "
                     f"{(hwm or 0) / RSS_TARGET_KIB:.2f}× target | < 64 MiB | |")
        s8 = mem.get("seeder_serving_8") or {}
        if s8:
            lines.append(f"| memory: peak RSS of a seeder serving 8 peers ({s8['size'] / MiB:.0f} MiB, unlimited) | "
                         f"{(s8.get('vmhwm_kib') or 0) / 1024:.1f} MiB (after start: "
                         f"{(s8.get('vmhwm_after_start_kib') or 0) / 1024:.1f} MiB; {s8['downloads_ok']}/8 downloads ok)"
                         f" | 64 MiB | {(s8.get('vmhwm_kib') or 0) / RSS_TARGET_KIB:.2f}× | < 64 MiB | |")
    if fl and fl.get("seeder_vmhwm_kib"):
        lines.append(f"| memory: peak RSS of the flash-crowd seeder | {fl['seeder_vmhwm_kib'] / 1024:.1f} MiB | 64 MiB | "
                     f"{fl['seeder_vmhwm_kib'] / RSS_TARGET_KIB:.2f}× | < 64 MiB | |")
    di = sc.get("discovery")
    if di:
        iv = di["announce_interval"]
        targets = {"join": (1.0, "≤ 1 s"), "stop": (0.5, "≤ 0.5 s"), "kill": (3 * iv, f"≤ 3 intervals = {3 * iv:g} s")}
        for k in ("join", "stop", "kill"):
            d = di.get(k)
            if not d:
                lines.append(f"| discovery {k} | no samples | | | {targets[k][1]} | |")
                continue
            lines.append(f"| discovery: {k} latency, loopback, {d['n']} samples (poll 20 ms) | "
                         f"p50 {d['p50']:.3f} s, p90 {d['p90']:.3f} s, max {d['max']:.3f} s (min {d['min']:.3f}) | "
                         f"target {targets[k][0]:g} s | max {d['max'] / targets[k][0]:.2f}× target | {targets[k][1]} | |")
        if di["failures"]:
            lines.append(f"| discovery failures | {len(di['failures'])}: {'; '.join(di['failures'][:3])} | | | 0 | |")
    mi = sc.get("micro")
    if mi:
        if "skipped" in mi:
            lines.append(f"| micro | skipped: no `p2p-microbench` product in the tree | | | | |")
        else:
            lines.append(f"| micro | see output below | | | | |")
    out = "\n".join(lines)
    if mi and "output" in mi:
        out += "\n\nmicro (`p2p-microbench`):\n\n```\n" + mi["output"].strip() + "\n```"
    if results.get("notes"):
        out += "\n\nnotes:\n" + "\n".join(f"- {n}" for n in results["notes"])
    return out


CROWD_NAMES = {"p2p": "default relay overlay", "p2p_mesh": "full mesh, `--relay-partners 0`"}


def crowd_rows(results, cr):
    """The crowd scenario's rows: last done per p2p variant, then peak RSS, CPU-seconds and
    connections of every variant, each beside libtorrent's from the same runs."""
    n, bound, nominal = cr["n"], cr["bound_payload"], cr["bound_nominal"]
    head = f"crowd, 1 + {n}, {cr['rate']} each, {cr['size'] / MiB:.0f} MiB"
    keys = [k for k in cr["variants"] if cr.get(k)]
    bt = cr.get("bittorrent") if cr["runs"].get("bittorrent") else None
    load = load_note(results, "crowd")
    mib = lambda m: fmt_mr(m, "MiB", 1, 1 / 1024)
    count = lambda m: fmt_mr(m, "", 0)
    name = lambda k: f"{CROWD_NAMES.get(k, k)}: " if len(keys) > 1 else ""
    delivered_gib = n * cr["size"] / GiB
    rows = []
    for k in keys:
        v = cr[k]
        p2p = (f"{fmt_mr(v['last'])}{fail_note(v['failures'], 'runs')}"
               + (f" ({v['failed_downloads']} downloads failed)" if v["failed_downloads"] else ""))
        if v.get("seeder_upload_factor"):
            p2p += f"; seeder uploaded {fmt_mr(v['seeder_upload_factor'], '', 2)} × F"
        ref = f"Kumar–Ross bound {bound:.2f} s payload / {nominal:.2f} s nominal"
        if bt:
            ref += (f"; BitTorrent (libtorrent, 256 KiB pieces) {fmt_mr(bt['last'])} ({ratio(bt['last'], bound)} bound"
                    + (f", seeder uploaded {fmt_mr(bt['seeder_upload_factor'], '', 2)} × F"
                       if bt.get("seeder_upload_factor") else "") + ")"
                    + fail_note(bt["failures"], "BitTorrent runs"))
        rat = (f"{ratio(v['last'], bound)} payload, {ratio(v['last'], nominal)} nominal"
               + (f"; {ratio(v['last'], bt['last'])} BitTorrent" if bt else ""))
        rows.append(f"| {head}, last done (p2p, {CROWD_NAMES.get(k, k)}) | {p2p} | {ref} | {rat} | "
                    f"≤ 1.10× payload | {load} |")

    def side(v):
        return {
            "rss": (f"downloaders max {mib(v['downloader_vmhwm_max_kib'])}, median "
                    f"{mib(v['downloader_vmhwm_median_kib'])}; seeder {mib(v['seeder_vmhwm_kib'])}"
                    + (f"; of it private (RssAnon, peak of 1 s samples): downloaders max "
                       f"{mib(v['downloader_anon_peak_max_kib'])}, median {mib(v['downloader_anon_peak_median_kib'])}; "
                       f"mapped from files (code, libraries; shared by every process): median "
                       f"{mib(v['downloader_rss_file_median_kib'])}"
                       if v.get("downloader_anon_peak_max_kib") else "")),
            "cpu": (f"{n} downloaders {fmt_mr(v['crowd_cpu_s'])} together"
                    + (f" = {v['crowd_cpu_s']['median'] / delivered_gib:.2f} s per GiB received"
                       if v.get("crowd_cpu_s") else "")
                    + f", seeder {fmt_mr(v['seeder_cpu_s'])}; machine {fmt_mr(v['busy_cores'], 'cores', 1)} busy"),
            "conn": (f"per downloader max {count(v['conn_peak_max'])}, median {count(v['conn_peak_median'])} "
                     f"(each one's peak); seeder {count(v['conn_seeder_peak'])}; all at once "
                     f"{count(v['conn_total_peak'])}"
                     + (f"; its own count of peers (TCP and uTP): per downloader max {count(v['peers_peak_max'])}, "
                        f"median {count(v['peers_peak_median'])}; seeder {count(v['peers_seeder_peak'])}; all at "
                        f"once {count(v['peers_total_peak'])}" if v.get("peers_peak_max") else "")),
        }
    worst_rss = max((cr[k]["downloader_vmhwm_max_kib"]["max"] for k in keys if cr[k]["downloader_vmhwm_max_kib"]),
                    default=None)
    p2p_side = {k: side(cr[k]) for k in keys}
    bt_side = side(bt) if bt else None
    first = cr[keys[0]] if keys else None
    measures = (
        ("rss", "peak RSS (VmHWM) of each downloader and of the seeder",
         f"{worst_rss / RSS_TARGET_KIB:.2f}× target (largest)" if worst_rss else "—", "< 64 MiB"),
        ("cpu", "CPU-seconds (utime + stime, release to last done; seeder from the release)",
         "; ".join(f"{name(k)}{ratio(cr[k]['crowd_cpu_s'], bt['crowd_cpu_s'])} BitTorrent's downloaders"
                   for k in keys) if bt else "—", ""),
        ("conn", "established TCP connections, sampled every 1 s (all at once: both ends counted)",
         "; ".join(f"{name(k)}{ratio(cr[k]['conn_total_peak'], bt.get('peers_total_peak') or bt['conn_total_peak'])}"
                   f" BitTorrent's links all at once" for k in keys) if bt else "—", "bounded per peer (SPEC §12)"),
    )
    for what, label, rat, target in measures:
        if not first:
            break
        p2p = "; ".join(f"{name(k)}{p2p_side[k][what]}" for k in keys)
        ref = f"BitTorrent: {bt_side[what]}" if bt_side else "—"
        rows.append(f"| {head}: {label} | {p2p} | {ref} | {rat} | {target} | {load if what == 'cpu' else ''} |")
    return rows


def plot_flash(fl, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted((k for k in fl if k.isdigit()), key=int)
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        f = fl[key]
        n = f["n"]
        xmax = f["bound_payload"] * 1.5
        labels = {"p2p": "p2p (get --seed)", "curl": "curl, all from one nginx",
                  "bittorrent": "BitTorrent (libtorrent)"}
        for tool, style, color in (("p2p", "-", "tab:blue"), ("curl", "--", "tab:red"),
                                   ("bittorrent", ":", "tab:orange")):
            for i, r in enumerate(f["runs"].get(tool, [])):
                ts = sorted(r["times"])
                if not ts:
                    continue
                xs = [0.0] + [t for t in ts for _ in (0, 1)]
                ys = [0] + [c for k, _ in enumerate(ts) for c in (k, k + 1)]
                xmax = max(xmax, ts[-1] * 1.05)
                label = f"{labels[tool]}, {len(f['runs'][tool])} run(s)" if i == 0 else None
                ax.plot(xs, ys, style, color=color, alpha=0.8, drawstyle="default", label=label)
        ax.axvline(f["bound_payload"], color="black", lw=1.2,
                   label=f"Kumar–Ross bound, payload {f['bound_payload']:.2f} s")
        ax.axvline(f["bound_nominal"], color="gray", lw=1, ls=":",
                   label=f"Kumar–Ross bound, nominal {f['bound_nominal']:.2f} s")
        ax.axvline(f["bound_payload"] * 1.10, color="green", lw=1, ls="-.", label="1.10 × payload bound (target)")
        ax.set_xlim(0, xmax)
        ax.set_ylim(0, n + 0.5)
        ax.set_xlabel("seconds since all downloaders started")
        ax.set_ylabel("downloaders with the verified file")
        ax.set_title(f"flash crowd: 1 seeder + {n}, {f['size'] / MiB:.0f} MiB, 100 Mbit/s up per host")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
