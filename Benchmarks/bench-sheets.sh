#!/usr/bin/env bash
# Routing sheets, milliseconds per sheet: Waybill against ReportLab (the peer the issue names),
# same machine, same run, same page content, both writing real PDF files.
#   Benchmarks/bench-sheets.sh [COUNT]
#   BENCH_REPEAT=3 Benchmarks/bench-sheets.sh 1000   # each mode 3 times, alternating (shared machines are noisy)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
bin=$(swift build -c release --show-bin-path)/waybill
[ -x "$bin" ] || swift build -c release
python=/usr/bin/python3   # ReportLab comes from Debian's python3-reportlab

for _ in $(seq "${BENCH_REPEAT:-1}"); do
for mode in separate single; do
    w=$("$bin" bench sheets --count "$count" --mode "$mode" --templates Templates --json | grep '"tool"')
    r=$("$python" Benchmarks/reportlab_sheets.py --count "$count" --mode "$mode" --json | grep '"tool"')
    "$python" - "$w" "$r" "$count" <<'PY'
import json, sys
waybill = [json.loads(line) for line in sys.argv[1].splitlines()]
peer = json.loads(sys.argv[2])
for w in waybill:
    print(f"{w['mode']:>18}: {sys.argv[3]} sheets  waybill {w['ms_per_sheet']:6.2f} ms/sheet  "
          f"reportlab ({peer['mode']}) {peer['ms_per_sheet']:6.2f} ms/sheet  ratio {peer['ms_per_sheet'] / w['ms_per_sheet']:4.1f}x")
PY
done
done
