#!/usr/bin/python3
"""Peer benchmark: build Waybill routing sheets with ReportLab.

Draws the same one-page cover sheet Waybill renders (header band, title, directive
id, destinations, details, instruction box, QR code level Q in a 126x126 pt box at
upper right, Code 128 in a ~470x54 pt box in the bottom third) with
reportlab.pdfgen.canvas and ReportLab's QR / Code 128 widgets; reports ms per sheet.

Run it with /usr/bin/python3: ReportLab comes from the Debian package
python3-reportlab (3.6.12), which the pyenv python3 on PATH cannot import.

    /usr/bin/python3 Benchmarks/reportlab_sheets.py --count 200 [--mode separate|single]
        [--paper letter|a4] [--out DIR] [--json]

separate (default): one PDF file per sheet; single: one PDF with N pages. The timed
region is the whole loop, file writing included, after a 3-sheet warm-up. Then page 1
of one produced PDF is rendered at 150 dpi (pdftoppm) and decoded (zbarimg; packages
poppler-utils, zbar-tools): QR and Code 128 must both equal the token, else exit 1.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, letter
    from reportlab.pdfgen import canvas
except ImportError:
    sys.exit("reportlab: cannot import reportlab with %s; run with /usr/bin/python3" % sys.executable)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
QR_SIZE, BAR_W, BAR_H, MARGIN = 126.0, 470.0, 54.0, 36.0
BAND = colors.HexColor("#1F3A5F")


def b32(data, n):
    v = int.from_bytes(data, "big")
    return "".join(ALPHABET[(v >> (5 * i)) & 31] for i in range(n))


def sheet_data(i):
    """Distinct content per sheet; the token is 34 chars, e.g. WB1:K1:K7QM2XR9PC:ABCDEFGHJKMNPQRS."""
    h = hashlib.sha256(b"waybill-%d" % i).digest()
    did = b32(h[:8], 10)
    return {
        "token": "WB1:K1:%s:%s" % (did, b32(h[8:18], 16)),
        "id": did,
        "title": "Quarterly freight manifest #%d" % (i + 1),
        "destinations": ["Dock %d, North Terminal, Rotterdam" % (i % 9 + 1),
                         "Bay %d, Inland Hub, Duisburg" % (i % 17 + 1),
                         "Gate %d, Cargo Centre, Basel" % (i % 5 + 1)],
        "details": [("Owner", "ops-team-%02d@example.com" % (i % 40)),
                    ("Expires", "2025-%02d-%02d 18:00 UTC" % (i % 12 + 1, i % 28 + 1)),
                    ("Uses", "%d of 5" % (i % 5)),
                    ("Created", "2024-11-%02d 09:%02d UTC" % (i % 28 + 1, i % 60))],
    }


def draw_sheet(c, d, page, bar_width):
    w, h = page
    top = h - 56  # header band height
    c.setFillColor(BAND)
    c.rect(0, top, w, h - top, stroke=0, fill=1)
    c.setFillColor(colors.white)
    c.setFont("Helvetica-Bold", 15)
    c.drawString(MARGIN, top + 21, "WAYBILL  \u00b7  ROUTING SHEET")

    # QR code, upper right
    qx, qy = w - MARGIN - QR_SIZE, top - 18 - QR_SIZE
    dr = Drawing(QR_SIZE, QR_SIZE)
    dr.add(QrCodeWidget(d["token"], barLevel="Q", barWidth=QR_SIZE, barHeight=QR_SIZE))
    renderPDF.draw(dr, c, qx, qy)
    c.setFillColor(colors.black)
    c.setFont("Helvetica", 8)
    c.drawCentredString(qx + QR_SIZE / 2, qy - 10, "Scan to route")

    # title and directive id
    c.setFont("Helvetica-Bold", 22)
    c.drawString(MARGIN, top - 46, d["title"][:34])
    c.setFont("Helvetica", 9)
    c.drawString(MARGIN, top - 74, "DIRECTIVE")
    c.setFont("Courier-Bold", 34)
    c.drawString(MARGIN, top - 108, d["id"])

    # destinations
    y = top - 160
    c.setFont("Helvetica-Bold", 12)
    c.drawString(MARGIN, y, "Destinations")
    c.setFont("Helvetica", 11)
    for n, dest in enumerate(d["destinations"], 1):
        y -= 17
        c.drawString(MARGIN + 8, y, "%d.  %s" % (n, dest))

    # details
    y -= 34
    c.setFont("Helvetica-Bold", 12)
    c.drawString(MARGIN, y, "Details")
    for label, value in d["details"]:
        y -= 16
        c.setFont("Helvetica-Bold", 10)
        c.drawString(MARGIN + 8, y, label)
        c.setFont("Helvetica", 10)
        c.drawString(MARGIN + 90, y, value)

    # instruction box
    box_top, box_h = y - 24, 78
    c.setStrokeColor(BAND)
    c.setLineWidth(1.2)
    c.rect(MARGIN, box_top - box_h, w - 2 * MARGIN, box_h, stroke=1, fill=0)
    c.setFont("Helvetica-Bold", 11)
    c.drawString(MARGIN + 12, box_top - 18, "Instructions")
    c.setFont("Helvetica", 10)
    for k, line in enumerate(("Scan the QR code or the barcode at each handover point.",
                              "Do not cover, fold or laminate this sheet.",
                              "Report damaged sheets to the owner listed above.")):
        c.drawString(MARGIN + 12, box_top - 36 - 14 * k, line)

    # Code 128, bottom third
    bx, by = (w - BAR_W) / 2, h / 3 - 150
    Code128(d["token"], barWidth=bar_width, barHeight=BAR_H).drawOn(c, bx, by)
    c.setFont("Courier", 10)
    c.drawCentredString(w / 2, by - 14, d["token"])
    c.setFont("Helvetica", 8)
    c.drawCentredString(w / 2, by - 28, "Code 128  \u00b7  same token as the QR code")
    c.showPage()


def build(sheets, mode, page, out, prefix, bar_width):
    """Build the sheets; returns the PDF holding sheets[0] on page 1."""
    if mode == "single":
        path = os.path.join(out, prefix + ".pdf")
        c = canvas.Canvas(path, pagesize=page)
        for d in sheets:
            draw_sheet(c, d, page, bar_width)
        c.save()
        return path
    paths = []
    for n, d in enumerate(sheets):
        paths.append(os.path.join(out, "%s-%04d.pdf" % (prefix, n)))
        c = canvas.Canvas(paths[-1], pagesize=page)
        draw_sheet(c, d, page, bar_width)
        c.save()
    return paths[0]


def verify(pdf, token, tmp):
    """Render page 1 at 150 dpi, decode QR and Code 128 separately; returns an error or None."""
    if not (shutil.which("pdftoppm") and shutil.which("zbarimg")):
        return "pdftoppm/zbarimg not found (apt-get install poppler-utils zbar-tools)"
    png = os.path.join(tmp, "verify")
    subprocess.run(["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-singlefile", "-png", pdf, png],
                   check=True)
    for sym in ("qrcode", "code128"):
        r = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-S%s.enable" % sym, png + ".png"],
                           capture_output=True, text=True)
        got = r.stdout.strip()
        if got != token:
            return "%s decoded %r, expected %r" % (sym, got, token)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--mode", choices=("separate", "single"), default="separate")
    ap.add_argument("--paper", choices=("letter", "a4"), default="letter")
    ap.add_argument("--out", help="directory for the PDFs (default: a temp dir, removed afterwards)")
    ap.add_argument("--json", action="store_true", help="also print a JSON result object")
    a = ap.parse_args()
    if a.count < 1:
        ap.error("--count must be >= 1")

    page = letter if a.paper == "letter" else A4
    tmp = tempfile.mkdtemp(prefix="reportlab_sheets-")
    out = a.out or tmp
    os.makedirs(out, exist_ok=True)
    try:
        sheets = [sheet_data(i) for i in range(a.count + 3)]
        warm, timed = sheets[:3], sheets[3:]
        # bar width giving a BAR_W-wide symbol incl. quiet zones (all tokens share one shape)
        bar_width = BAR_W / Code128(timed[0]["token"], barWidth=1.0, barHeight=BAR_H).width
        build(warm, a.mode, page, tmp, "warmup", bar_width)

        t0 = time.perf_counter()
        first = build(timed, a.mode, page, out, "sheet", bar_width)
        ms = (time.perf_counter() - t0) * 1000.0 / a.count

        print("reportlab: %d sheets, %.2f ms per sheet (%s)" % (a.count, ms, a.mode))
        err = verify(first, timed[0]["token"], tmp)
        print("reportlab: verification failed: " + err if err else "reportlab: verified QR+Code128")
        if a.json:
            print(json.dumps({"tool": "reportlab", "count": a.count, "mode": a.mode,
                              "ms_per_sheet": round(ms, 3)}))
        return 1 if err else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
