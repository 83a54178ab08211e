#!/usr/bin/env bash
# Scan decoding throughput: Waybill against paperless-ngx's method (pdftoppm at 300 dpi, then
# zxing-cpp), and pdftoppm + zbarimg, on the same folder in one run, both cores busy.
#   Benchmarks/bench-decode.sh [DIR]     (default: a generated corpus of 20 files x 10 pages)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build -c release --show-bin-path)/waybill
[ -x "$bin" ] || swift build -c release
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
