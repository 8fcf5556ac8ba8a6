#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (with the address sanitizer) and runs each one for
# a bounded time or number of runs, one after another.
#
# Usage: scripts/fuzz.sh [--seconds N | --runs N] [--no-build] [--fresh] [target ...]
#        scripts/fuzz.sh --write-seeds [target ...]
#
#   --seconds N    run each target for N seconds (default 60)
#   --runs N       run each target for N executions instead
#   --no-build     use the targets already built
#   --fresh        forget the corpus that earlier runs found (Fuzz/scratch/corpus)
#   --write-seeds  regenerate the committed seed corpora Fuzz/Corpus/<target>/ and exit
#   target         FuzzFrame FuzzAnnouncement FuzzTransferMessage FuzzManifest
#                  FuzzChunkBitmap FuzzFileName FuzzCollectionManifest (default: all)
#
# Each target starts from its committed seeds (Fuzz/Corpus/<target>/) plus whatever earlier
# runs found; new inputs go to Fuzz/scratch/corpus/<target>/ and crashing inputs to
# Fuzz/artifacts/<target>/, both ignored by git. Prints the executions per target and in
# total, and exits non-zero if any target crashed or broke an invariant. Reproduce a crash
# with: Fuzz/.build/release/<target> Fuzz/artifacts/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(FuzzFrame FuzzAnnouncement FuzzTransferMessage FuzzManifest FuzzChunkBitmap FuzzFileName
    FuzzCollectionManifest)
seconds=""
runs=""
build=1
fresh=0
write_seeds=0
targets=()
while (($#)); do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --fresh) fresh=1; shift ;;
        --write-seeds) write_seeds=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        Fuzz*) targets+=("$1"); shift ;;
        *) echo "fuzz.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "fuzz.sh: no target '$target'" >&2; exit 2; }
done
if [[ -z "$seconds" && -z "$runs" ]]; then seconds=60; fi

# Longest input per target: enough for every message kind and a few frames of a stream,
# small enough to keep executions fast.
max_len() {
    case "$1" in
        FuzzFrame) echo 4096 ;;
        FuzzAnnouncement) echo 64 ;;
        FuzzTransferMessage) echo 4096 ;;
        FuzzManifest) echo 4096 ;;
        FuzzChunkBitmap) echo 1024 ;;
        FuzzFileName) echo 600 ;;
        FuzzCollectionManifest) echo 8192 ;;
    esac
}

bin=Fuzz/.build/release
if ((build)); then
    echo "fuzz.sh: building the fuzz targets (release, -sanitize=fuzzer,address)"
    start=$SECONDS
    swift build -c release --package-path Fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld
    echo "fuzz.sh: built in $((SECONDS - start)) s"
fi

if ((write_seeds)); then
    for target in "${targets[@]}"; do
        # Inputs kept from fixed crashes (regression-*) stay; the rest is regenerated.
        mkdir -p "Fuzz/Corpus/$target"
        find "Fuzz/Corpus/$target" -type f ! -name 'regression-*' -delete
        P2P_FUZZ_WRITE_SEEDS="Fuzz/Corpus/$target" "$bin/$target"
    done
    exit 0
fi

((fresh)) && rm -rf Fuzz/scratch/corpus
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}"
# Swift's own crash reporter reads memory in ways ASan reports as a second crash, hiding
# the first; with it off, a runtime trap reaches libFuzzer's handler directly.
export SWIFT_BACKTRACE=enable=no
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
declare -A executions rates status newcount
total=0
failed=0
for target in "${targets[@]}"; do
    corpus="Fuzz/scratch/corpus/$target"
    artifacts="Fuzz/artifacts/$target"
    log="Fuzz/scratch/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    before=$(find "$corpus" -type f | wc -l)
    limit=()
    [[ -n "$seconds" ]] && limit+=("-max_total_time=$seconds")
    [[ -n "$runs" ]] && limit+=("-runs=$runs")
    echo "fuzz.sh: $target (${seconds:+$seconds s}${runs:+$runs runs}, max_len $(max_len "$target"))"
    set +e
    "$bin/$target" "${limit[@]}" \
        -max_len="$(max_len "$target")" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "Fuzz/Corpus/$target" >"$log" 2>&1
    code=$?
    set -e
    count=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [[ -z "$count" ]]; then
        count=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    count=${count:-0}
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    executions[$target]=$count
    rates[$target]=${rate:-?}
    newcount[$target]=$(($(find "$corpus" -type f | wc -l) - before))
    total=$((total + count))
    if ((code != 0)); then
        status[$target]="FAILED (exit $code)"
        failed=1
        echo "fuzz.sh: $target failed; the end of its log ($log):" >&2
        tail -40 "$log" >&2
        echo "fuzz.sh: crashing inputs in $artifacts/:" >&2
        find "$artifacts" -type f -newer "$marker" >&2 || true
    else
        status[$target]=ok
    fi
done

echo
printf '%-22s %14s %10s %12s  %s\n' target executions exec/s "new inputs" result
for target in "${targets[@]}"; do
    printf '%-22s %14s %10s %12s  %s\n' "$target" "${executions[$target]}" "${rates[$target]}" \
        "${newcount[$target]}" "${status[$target]}"
done
printf '%-22s %14s\n' total "$total"
seeds=$(find Fuzz/Corpus -type f | wc -l)
found=$(find Fuzz/scratch/corpus -type f | wc -l)
echo "corpus: $seeds committed seeds, $found inputs in Fuzz/scratch/corpus"
if ((failed)); then
    echo "fuzz.sh: FAILED: see Fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz.sh: no crashes"
