#!/usr/bin/env bash
# bench.sh — the benchmark suite (SPEC §7 on the §9 testbed): p2p against its
# references, measured in the same run, alternating.
#
# Usage:
#   scripts/bench.sh [--quick] [--runs N] [--trials N] [--flash-n N]...
#                    [--crowd-n N] [--crowd-rate RATE] [--crowd-tools p2p,mesh,bittorrent]
#                    [--idle-wait S] [--idle-threshold CORES] [--no-warm] [--no-build]
#                    [--keep-logs]
#                    [scenario...]
#   scripts/bench/run.py --summarize bench-results/latest/results.json
#                    (prints the table of an earlier run again)
#
# Scenarios (default: all but crowd, in this order):
#   single     1 peer -> 1 peer, 1 GiB, no rate limit, on 2 testbed hosts and on
#              loopback; references curl -o from nginx, iperf3 one stream
#   encrypted  1 peer -> 1 peer on loopback, 1 GiB, without and with a network
#              key (--secret-file), alternating; ratio of throughputs (goal >= 0.70)
#   multi      4 seeders at 100mbit egress -> 1 downloader, 256 MiB; bound
#              F/(4 x 95.64 Mbit/s) payload and F/(4 x 100) nominal; aria2c from
#              the 4 hosts' nginx as mirrors
#   flash      1 seeder + 8 and + 15 downloaders, every host 100mbit egress,
#              128 MiB, all released together; Kumar-Ross bound; every
#              downloader curl-ing from the seeder's nginx at once; a BitTorrent
#              swarm (libtorrent, scripts/bench/bt.py) on the same hosts;
#              then the same file pushed with `p2p send` to the same hosts
#   folder     a folder of 1,000 files of 1-64 KiB sent from 1 host to 8 (100mbit
#              each); references every target curl-ing every file from one nginx,
#              and libtorrent with one multi-file torrent
#   memory     peak RSS (VmHWM) of a peer downloading 4 GiB (loopback), and of a
#              seeder serving 8 peers (testbed)
#   discovery  join / stop / kill latency on loopback, 50 trials
#   micro      release-mode `p2p-microbench`, if the tree has one
#   crowd      only when named (about 10 min a run): 1 seeder + 63 downloaders
#              (--crowd-n), every host --crowd-rate egress (default 25mbit), 128 MiB,
#              all released together; Kumar-Ross bound at that rate; a libtorrent
#              swarm on the same hosts; peak RSS, CPU-seconds and established TCP
#              connections (sampled every 1 s) of every process. If `p2p get --help`
#              has --relay-partners, p2p runs with its default and with
#              --relay-partners 0 (full mesh). `scripts/bench.sh crowd`: 3 runs
#
# --quick: 1 run each and small files (64 MiB, 32 MiB, 16 MiB with N = 4, 100 files to 4, 256 MiB
# for memory and encrypted, 5 discovery trials; crowd: 16 MiB with N = 6): a couple of minutes.
# Full: about 45 min with today's p2p (most of it the client-server flash-crowd reference),
# plus about 10 min per run of crowd if named.
#
# What it does: installs missing Debian packages (nginx, curl, iperf3, aria2,
# python3-matplotlib, python3-libtorrent, iproute2), builds the release binary once
# (.build-release), then re-runs itself inside a private network namespace
# (unshare --net --mount, private /run/netns: only loopback, and testbed hosts
# invisible outside) and runs scripts/bench/run.py there (the runner: it imports
# its sibling modules in scripts/bench/, one per concern and one per scenario,
# listed in its header). Needs root.
#
# Noise: the machine is shared (2 cores). Before every measured run the runner
# measures how many cores other processes keep busy (over 1 s), waits up to
# --idle-wait seconds (default 60; 0 with --quick) for fewer than
# --idle-threshold (default 0.3) cores busy, and records that load and the
# machine's busy cores during the run; the table shows them per scenario.
#
# Page cache: this VM hands memory the guest frees back to the host within
# seconds, and the next first touch of it is slow (~2 s per GiB written cold,
# ~0.35 s warm; the runner probes both and records them). So before every run
# that writes to disk, the runner writes and deletes a scratch file as large as
# what the run will write (--no-warm: don't), and both tools start alike.
#
# Output: bench-results/<stamp>/ (results.json, runs.tsv, summary.md, flash.png;
# bench-results/latest points at the newest) and the Markdown table on stdout.
# A full (non --quick) run with the flash scenario also refreshes
# BENCHMARKS-flash.png. Random test files are kept in bench-results/data/ for the
# next run (delete it to free the space: about 6 GiB after a full run).
#
# Safety: traffic only on loopback and testbed hosts 198.18.0.0/24; every wait is
# bounded; only processes started here are signalled, by PID; testbeds are
# torn down on exit (trap) and vanish with the private namespace anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
prog="scripts/bench.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

quick=0 build=1
pass=() scenarios=()
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --quick) quick=1; pass+=("$1"); shift ;;
        --no-warm|--keep-logs) pass+=("$1"); shift ;;
        --no-build) build=0; shift ;;
        --runs|--trials|--flash-n|--crowd-n|--crowd-rate|--crowd-tools|--announce-interval|--log-level|--idle-wait|--idle-threshold)
            (($# >= 2)) || { echo "$prog: $1 needs a value" >&2; exit 2; }
            pass+=("$1" "$2"); shift 2 ;;
        --*) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) pass+=("$1"); scenarios+=("$1"); shift ;;
    esac
done

if [[ "${P2P_BENCH_ISOLATED:-}" != 1 ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "$prog: needs root (network namespaces, tc)" >&2; exit 1; }

    # --- packages (idempotent: apt only when something is missing)
    pkgs=()
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || pkgs+=(nginx)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v iperf3 >/dev/null || pkgs+=(iperf3)
    command -v aria2c >/dev/null || pkgs+=(aria2)
    command -v ip >/dev/null && command -v tc >/dev/null || pkgs+=(iproute2)
    command -v unshare >/dev/null || pkgs+=(util-linux)
    command -v sync >/dev/null || pkgs+=(coreutils)
    [[ -x /usr/bin/python3 ]] || pkgs+=(python3)
    if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then pkgs+=(python3-matplotlib); fi
    if ! /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then pkgs+=(python3-libtorrent); fi
    if ((${#pkgs[@]})); then
        echo "$prog: installing ${pkgs[*]}" >&2
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
    if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
        echo "$prog: python3-matplotlib unusable; trying pip" >&2
        timeout 600 /usr/bin/python3 -m pip install -q matplotlib ||
            echo "$prog: no matplotlib: the flash plot will be skipped" >&2
    fi
    # Debian starts nginx/iperf3 services on install where it can: we use our own
    # instances on testbed/loopback addresses only. (Nothing here stops system services.)

    # --- build (once; swift build is incremental)
    if ((build)); then
        echo "$prog: building release (.build-release)" >&2
        swift build -c release --scratch-path .build-release --product p2p >&2
        if grep -q 'p2p-microbench' Package.swift; then
            swift build -c release --scratch-path .build-release --product p2p-microbench >&2
        fi
    fi
    [[ -x .build-release/release/p2p ]] || { echo "$prog: no release binary; run without --no-build" >&2; exit 1; }
    scripts/testbed.sh check >&2

    # --- isolation: a private network namespace with only loopback and a private /run/netns
    export P2P_BENCH_ISOLATED=1
    exec unshare --net --mount -- bash -c '
        set -euo pipefail
        mkdir -p /run/netns
        mount -t tmpfs -o mode=755 tmpfs /run/netns
        ip link set lo up
        exec "$0" --no-build "$@"' "$0" "${pass[@]}"
fi

# ------------------------------------------------------------ inside the namespace
mkdir -p bench-results
pidfile="$(mktemp /tmp/p2p-bench-pids.XXXXXX)"
cleanup() {
    local rc=$? pid name
    trap - EXIT INT TERM
    # Processes the runner started and did not reap (only if it died badly; its
    # children also get SIGKILL from PR_SET_PDEATHSIG). A PID is signalled only if it
    # is still in this private network namespace, which holds nothing but ours.
    local self_ns; self_ns="$(readlink /proc/self/ns/net)"
    while read -r pid; do
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        [[ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" == "$self_ns" ]] || continue
        kill -KILL "$pid" 2>/dev/null || true
    done <"$pidfile"
    rm -f "$pidfile"
    for name in bchs bchm bchf bchr; do
        if ip netns list 2>/dev/null | grep -q "^$name-h"; then
            scripts/testbed.sh down "$name" >&2 || true
        fi
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

plot=()
if ((!quick)) && { ((${#scenarios[@]} == 0)) || printf '%s\n' "${scenarios[@]}" | grep -qx flash; }; then
    plot=(--plot-out "$repo/BENCHMARKS-flash.png")
fi
# The pidfile lists every PID the runner started; it reaps them itself, so on a
# clean exit the list is emptied and the trap signals nothing.
rc=0
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 scripts/bench/run.py --pidfile "$pidfile" "${plot[@]}" "${pass[@]}" || rc=$?
: >"$pidfile"
exit "$rc"
