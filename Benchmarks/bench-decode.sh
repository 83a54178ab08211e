#!/usr/bin/env bash
# Scan decoding throughput: Waybill against paperless-ngx's method (pdftoppm at 300 dpi, then
# zxing-cpp), and pdftoppm + zbarimg, on the same folder in one run, both cores busy.
#   Benchmarks/bench-decode.sh [DIR]     (default: a generated corpus of 20 files x 10 pages)
# WAYBILL_BIN names the waybill binary (default: this package's release build). With
# WAYBILL_BASELINE=OTHER_BINARY the two are run ROUNDS times (default 3) alternately on the same
# folder instead of the peers, and the ratio of the medians is printed: on a shared machine,
# compare binaries this way rather than by absolute figures from separate runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${WAYBILL_BIN:-}
if [ -z "$bin" ]; then
    bin=$(swift build -c release --show-bin-path)/waybill
    [ -x "$bin" ] || swift build -c release
fi
baseline=${WAYBILL_BASELINE:-}
rounds=${ROUNDS:-3}
dir=${1:-}
if [ -z "$dir" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$bin" directive create --data-dir "$work/data" --title "Benchmark" --owner bench@example.com \
        --to mailto:bench@example.com --json > "$work/directive.json"
    id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/directive.json")
    "$bin" sheet "$id" --data-dir "$work/data" --templates Templates -o "$work/sheet.pdf" > /dev/null
    /usr/bin/python3 Benchmarks/make_decode_corpus.py "$work/sheet.pdf" "$work/corpus" --files 20 --pages 10
    dir="$work/corpus"
    data=(--data-dir "$work/data")
else
    data=()
fi
if [ -n "$baseline" ]; then
    results=()
    for _ in $(seq "$rounds"); do
        results+=("$("$baseline" bench decode "$dir" "${data[@]}" --json)" "$("$bin" bench decode "$dir" "${data[@]}" --json)")
    done
    /usr/bin/python3 - "${results[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
base, new = runs[0::2], runs[1::2]
for name, rs in (("baseline", base), ("waybill", new)):
    rates = [r["pages_per_second"] for r in rs]
    print(f"{name:>20}: {rs[0]['pages']} pages, {rs[0]['sheets']} sheets, pages/s per round "
          + ", ".join(f"{r:.1f}" for r in rates) + f"; median {statistics.median(rates):.1f}")
ratio = statistics.median(r["pages_per_second"] for r in new) / statistics.median(r["pages_per_second"] for r in base)
print(f"{'':>20}  waybill is {ratio:.2f}x the baseline")
PY
    exit 0
fi
w=$("$bin" bench decode "$dir" "${data[@]}" --json)
z=$(/usr/bin/python3 Benchmarks/peer_decode.py "$dir" --engine zxing --json)
b=$(/usr/bin/python3 Benchmarks/peer_decode.py "$dir" --engine zbar --json)
/usr/bin/python3 - "$w" "$z" "$b" <<'PY'
import json, sys
w, *peers = (json.loads(a) for a in sys.argv[1:])
print(f"{'waybill':>20}: {w['pages']} pages, {w['sheets']} sheets, {w['pages_per_second']:6.1f} pages/s, {w['ms_per_page']:7.2f} ms/page")
for p in peers:
    print(f"{p['tool']:>20}: {p['pages']} pages, {p['sheets']} sheets, {p['pages_per_second']:6.1f} pages/s, "
          f"{p['ms_per_page']:7.2f} ms/page; waybill is {w['pages_per_second'] / p['pages_per_second']:.1f}x")
PY
