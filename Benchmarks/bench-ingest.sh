#!/bin/bash
# `waybill ingest` end to end (decode, jobs, PDFs, folder deliveries, journal) beside the
# decode-only rate (`waybill bench decode`) on the same generated folder of about 1,000 mixed
# pages, both with every core busy.
#
#   Benchmarks/bench-ingest.sh [PAGES]        (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
PAGES=${1:-1000}
BIN=${WAYBILL_BIN:-$(swift build -c release --show-bin-path)/waybill}
WORK=$(mktemp -d /tmp/waybill-bench-ingest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export WAYBILL_DATA_DIR=$WORK/data WAYBILL_TEMPLATES=$PWD/Templates
id=$("$BIN" directive create --title "Bench" --owner bench@example.com --to folder:archive/bench --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$BIN" sheet "$id" -o "$WORK/sheet.pdf" >/dev/null
/usr/bin/python3 Benchmarks/make_ingest_corpus.py "$WORK/sheet.pdf" "$WORK/scans" "$PAGES"
echo "decode only:"
"$BIN" bench decode "$WORK/scans" | sed 's/^/  /'
echo "ingest, end to end:"
"$BIN" ingest "$WORK/scans" --jobs "$(nproc)" --report "$WORK/report.csv" > "$WORK/ingest.log" || true
tail -n 12 "$WORK/ingest.log" | sed 's/^/  /'
echo "  delivered files: $(ls "$WORK/data/archive/bench" | wc -l)"
