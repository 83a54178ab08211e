#!/usr/bin/env bash
# Routing sheets per millisecond: Waybill against ReportLab (the peer named in the issue), same
# machine, same run, same page content, both writing real PDF files.
#   Benchmarks/bench-sheets.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
bin=$(swift build -c release --show-bin-path)/waybill
[ -x "$bin" ] || swift build -c release
python=/usr/bin/python3

for mode in separate single; do
    w=$("$bin" bench sheets --count "$count" --mode "$mode" --templates Templates --json | grep '"tool"')
    r=$("$python" Benchmarks/reportlab_sheets.py --count "$count" --mode "$mode" --json | grep '"tool"')
    "$python" - "$w" "$r" "$mode" "$count" <<'PY'
import json, sys
w, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{sys.argv[3]:>8}: {sys.argv[4]} sheets  waybill {w['ms_per_sheet']:.2f} ms/sheet  "
      f"reportlab {r['ms_per_sheet']:.2f} ms/sheet  ratio {r['ms_per_sheet'] / w['ms_per_sheet']:.1f}x")
PY
done
