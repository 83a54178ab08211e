#!/bin/bash
# End-to-end pages per second, SMTP to folder: `waybill serve` (release build) on a free port,
# MESSAGES scans (a routing sheet and PAGES document pages each, 200-dpi image-only PDFs as
# scanners make them) sent by Python's smtplib over two connections at once, timed from the
# first byte sent to the last document written.
#
#   Benchmarks/bench-pipeline.sh [MESSAGES] [PAGES]        (defaults 20 and 9)
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-20}
PAGES=${2:-9}
BIN=${WAYBILL_BIN:-$(swift build -c release --show-bin-path)/waybill}
WORK=$(mktemp -d /tmp/waybill-bench-pipeline.XXXXXX)
trap 'kill $SERVE 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export WAYBILL_DATA_DIR=$WORK/data WAYBILL_TEMPLATES=$PWD/Templates WAYBILL_GREETING_DELAY=0

id=$("$BIN" directive create --title "Bench" --owner bench@example.com --to folder:archive/bench --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$BIN" sheet "$id" -o "$WORK/sheet.pdf" >/dev/null
docs=""
for n in $(seq 1 "$PAGES"); do docs="$docs doc:PAGE-$n"; done
# One scan, sent MESSAGES times: every message is routed in full all the same.
/usr/bin/python3 Fixtures/make_batch.py "$WORK/scan.pdf" "sheet:$WORK/sheet.pdf" $docs

"$BIN" serve --smtp-host 127.0.0.1 --smtp-port 0 --workers 2 2>"$WORK/serve.log" &
SERVE=$!
for _ in $(seq 1 200); do grep -q "listening on" "$WORK/serve.log" && break; sleep 0.1; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/serve.log" | cut -d: -f2)

/usr/bin/python3 - "$PORT" "$WORK/scan.pdf" "$MESSAGES" "$WORK/data/archive/bench" "$((PAGES + 1))" <<'EOF'
import os, smtplib, sys, threading, time
from email.message import EmailMessage
port, scan, count, folder, pages = int(sys.argv[1]), open(sys.argv[2], "rb").read(), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
msg = EmailMessage()
msg["From"] = "mfp@example.com"; msg["To"] = "scan@localhost"; msg["Subject"] = "bench"
msg.add_attachment(scan, maintype="application", subtype="pdf", filename="scan.pdf")
data = msg.as_bytes()
start = time.monotonic()
def send(n):
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
        for _ in range(n):
            s.sendmail("mfp@example.com", ["scan@localhost"], data)
threads = [threading.Thread(target=send, args=(count // 2 + (i < count % 2),)) for i in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
sent = time.monotonic() - start
while len([f for f in os.listdir(folder) if not f.startswith(".")] if os.path.isdir(folder) else []) < count:
    time.sleep(0.05)
    if time.monotonic() - start > 1800: sys.exit("timed out")
elapsed = time.monotonic() - start
print(f"{count} messages, {count * pages} pages ({pages} per scan, {len(scan) // 1024} KiB), 2 workers, {os.cpu_count()} cores")
print(f"all accepted after {sent:.1f} s; all delivered after {elapsed:.1f} s")
print(f"end to end: {count * pages / elapsed:.2f} pages/s, {count / elapsed:.2f} messages/s")
EOF
grep -o 'timings=[^[]*' "$WORK/serve.log" | head -3
