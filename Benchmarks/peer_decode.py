#!/usr/bin/python3
"""The peer for `waybill bench decode`: paperless-ngx's method on the same folder.

    /usr/bin/python3 Benchmarks/peer_decode.py DIR [--engine zxing|zbar] [--jobs 2] [--json]

Every page of every PDF is rendered with pdftoppm at 300 dpi and decoded with zxing-cpp
(Debian's python3-zxing-cpp, the library paperless-ngx uses) or with zbarimg; files are shared
among --jobs processes so both cores are busy, as Waybill's are. Prints pages per second,
milliseconds per page and the number of pages holding a Waybill token, so the two tools can be
checked to find the same sheets.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

ENGINE = "zxing"


def decode_file(path):
    pages = 0
    sheets = 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", "300", "-gray", "-png", path, os.path.join(tmp, "p")], check=True)
        for name in sorted(os.listdir(tmp)):
            pages += 1
            image_path = os.path.join(tmp, name)
            if ENGINE == "zxing":
                import zxingcpp
                from PIL import Image
                texts = [r.text for r in zxingcpp.read_barcodes(Image.open(image_path))]
            else:
                result = subprocess.run(["zbarimg", "-q", "--raw", image_path], capture_output=True, text=True)
                texts = result.stdout.split()
            if any(t.startswith("WB1:") for t in texts):
                sheets += 1
    return pages, sheets


def init(engine):
    global ENGINE
    ENGINE = engine


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--engine", choices=["zxing", "zbar"], default="zxing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = sorted(os.path.join(args.directory, f) for f in os.listdir(args.directory) if f.lower().endswith(".pdf"))
    start = time.perf_counter()
    with Pool(args.jobs, initializer=init, initargs=(args.engine,)) as pool:
        results = pool.map(decode_file, files, chunksize=1)
    elapsed = time.perf_counter() - start
    pages = sum(p for p, _ in results)
    sheets = sum(s for _, s in results)
    tool = "pdftoppm+" + ("zxing-cpp" if args.engine == "zxing" else "zbarimg")
    if args.json:
        print(json.dumps({"tool": tool, "files": len(files), "pages": pages, "sheets": sheets, "workers": args.jobs,
                          "ms_per_page": round(elapsed * 1000 / max(1, pages), 2),
                          "pages_per_second": round(pages / elapsed, 1)}))
    else:
        print(f"{tool}: {len(files)} files, {pages} pages, {sheets} sheets, {args.jobs} workers: "
              f"{pages / elapsed:.1f} pages/s, {elapsed * 1000 / max(1, pages):.2f} ms per page")


if __name__ == "__main__":
    sys.exit(main())
