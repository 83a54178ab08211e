#!/usr/bin/env bash
# Peak resident memory of `waybill decode` on one 500-page, 300-dpi scanned PDF (image-only, as
# scanners write them; about 330 MB). The issue's bound: under 300 MB.
#   Benchmarks/memory-decode.sh [PAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
pages=${1:-500}
bin=$(swift build -c release --show-bin-path)/waybill
[ -x "$bin" ] || swift build -c release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" directive create --data-dir "$work/data" --title "Memory" --owner m@example.com --to mailto:m@example.com \
    --json > "$work/d.json"
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/d.json")
"$bin" sheet "$id" --data-dir "$work/data" --templates Templates -o "$work/sheet.pdf" > /dev/null
/usr/bin/python3 Benchmarks/make_decode_corpus.py "$work/sheet.pdf" "$work/scan" --files 1 --pages "$pages" > /dev/null
size=$(du -m "$work/scan/batch-0000.pdf" | cut -f1)
/usr/bin/time -f "%M %e" -o "$work/time" "$bin" decode --data-dir "$work/data" "$work/scan/batch-0000.pdf" > "$work/out"
read -r kb seconds < "$work/time"
echo "waybill decode: $pages pages (${size} MB PDF) in ${seconds} s, peak resident memory $((kb / 1024)) MB; $(tail -n +1 "$work/out" | head -1)"
