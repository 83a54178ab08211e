#!/usr/bin/python3
"""Makes a scanned batch: routing sheets and document pages, as a network scanner sends them.

    /usr/bin/python3 Fixtures/make_batch.py OUT [--dpi 200] [--format pdf|tiff|jpeg|png] ITEM...

ITEM is `sheet:SHEET.pdf` (page 1 of a sheet the CLI rendered), `doc:LABEL` (a document page:
a paragraph of text and a Code 128 barcode reading LABEL, so a test can tell which pages reached
a destination and in which order) or `blank` (a duplex back: white paper with a little sensor
noise). Every page is rasterized with pdftoppm and written the way scanners write: `pdf` is an
image-only PDF with one JPEG per page (Pillow), `tiff` a multi-page Group 4 TIFF, `jpeg` or
`png` one image (a single ITEM). Nothing here is hand-edited output of Waybill.
"""
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image
from reportlab.graphics.barcode import code128
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas


def rasterize(pdf, dpi, page=1):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-png", "-gray", pdf,
                        os.path.join(tmp, "p")], check=True)
        name = next(f for f in os.listdir(tmp) if f.endswith(".png"))
        return Image.open(os.path.join(tmp, name)).convert("L")


def document_page(label, path):
    c = canvas.Canvas(path, pagesize=letter)
    c.setFont("Helvetica-Bold", 20)
    c.drawString(72, 700, f"Document page {label}")
    c.setFont("Helvetica", 11)
    text = c.beginText(72, 670)
    rng = random.Random(label)
    words = "invoice total amount due account payable remit ledger vendor order net terms".split()
    for _ in range(24):
        text.textLine(" ".join(rng.choice(words) for _ in range(12)))
    c.drawText(text)
    barcode = code128.Code128(label, barHeight=40, barWidth=1.4)
    barcode.drawOn(c, 72, 120)
    c.showPage()
    c.save()


def blank_page(size, seed):
    image = Image.new("L", size, 250)
    rng = random.Random(seed)
    pixels = image.load()
    for _ in range(size[0] * size[1] // 5000):
        pixels[rng.randrange(size[0]), rng.randrange(size[1])] = rng.randrange(120, 250)
    return image


def main():
    args = sys.argv[1:]
    out = args.pop(0)
    dpi, fmt = 200, "pdf"
    if "--dpi" in args:
        i = args.index("--dpi"); dpi = int(args[i + 1]); del args[i:i + 2]
    if "--format" in args:
        i = args.index("--format"); fmt = args[i + 1]; del args[i:i + 2]
    pages = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, item in enumerate(args):
            if item.startswith("sheet:"):
                pages.append(rasterize(item[6:], dpi))
            elif item.startswith("doc:"):
                path = os.path.join(tmp, f"doc{n}.pdf")
                document_page(item[4:], path)
                pages.append(rasterize(path, dpi))
            elif item == "blank":
                pages.append(None)
            else:
                sys.exit(f"unknown item {item}")
    size = next((p.size for p in pages if p is not None), (int(8.5 * dpi), 11 * dpi))
    pages = [p if p is not None else blank_page(size, n) for n, p in enumerate(pages)]
    if fmt == "pdf":
        rgb = [p.convert("RGB") for p in pages]
        rgb[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=rgb[1:], quality=80)
    elif fmt == "tiff":
        bw = [p.convert("1") for p in pages]
        bw[0].save(out, compression="group4", save_all=True, append_images=bw[1:], dpi=(dpi, dpi))
    elif fmt == "jpeg":
        pages[0].save(out, quality=80, dpi=(dpi, dpi))
    elif fmt == "png":
        pages[0].save(out, dpi=(dpi, dpi))
    else:
        sys.exit(f"unknown format {fmt}")


if __name__ == "__main__":
    main()
