#!/usr/bin/python3
"""A folder of about PAGES scanned pages in the formats scanners save, for `waybill ingest`.

    /usr/bin/python3 Benchmarks/make_ingest_corpus.py SHEET.pdf OUTDIR [PAGES]

Batches of ten pages (a routing sheet, then nine document pages, a blank duplex back now and
then): 70% image-only JPEG PDFs at 200 dpi, 20% Group 4 multi-page TIFFs at 300 dpi, and the
rest single JPEG or PNG pages without a sheet (which ingest quarantines as no-sheet). Every file
has different bytes. Document pages are eight rasterized text pages in varying order.
"""
import os
import random
import sys
import tempfile

from PIL import Image
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures"))
from make_batch import rasterize  # noqa: E402  (the fixture generator's pdftoppm step)


def main():
    sheet, out = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    words = "invoice total amount due account payable remit ledger vendor order net terms freight".split()
    with tempfile.TemporaryDirectory() as tmp:
        docs = os.path.join(tmp, "docs.pdf")
        c = canvas.Canvas(docs, pagesize=letter)
        for n in range(8):
            c.setFont("Helvetica-Bold", 18)
            c.drawString(72, 720, f"Vendor statement {n + 1}")
            text = c.beginText(72, 690)
            text.setFont("Helvetica", 10)
            for _ in range(48):
                text.textLine(" ".join(rng.choice(words) for _ in range(13)))
            c.drawText(text)
            c.showPage()
        c.save()
        pages = {dpi: [rasterize(docs, dpi, n + 1) for n in range(8)] for dpi in (200, 300)}
        sheets = {dpi: rasterize(sheet, dpi) for dpi in (200, 300)}
    made = 0
    n = 0
    while made < total:
        n += 1
        kind = rng.random()
        if kind < 0.1:
            image = rng.choice(pages[200])
            path = os.path.join(out, f"photo-{n:04d}.{'jpg' if n % 2 else 'png'}")
            image.save(path, dpi=(200, 200), **({"quality": 80} if n % 2 else {}))
            made += 1
            continue
        dpi = 300 if kind > 0.8 else 200
        batch = [sheets[dpi]] + [rng.choice(pages[dpi]) for _ in range(9)]
        if rng.random() < 0.3:
            batch.insert(1, Image.new("L", batch[0].size, 252))
            batch.pop()
        if dpi == 200:
            rgb = [p.convert("RGB") for p in batch]
            rgb[0].save(os.path.join(out, f"scan-{n:04d}.pdf"), "PDF", resolution=200, save_all=True, append_images=rgb[1:],
                        quality=75 + n % 10)
        else:
            bw = [p.convert("1") for p in batch]
            bw[0].save(os.path.join(out, f"scan-{n:04d}.tif"), compression="group4", save_all=True, append_images=bw[1:],
                       dpi=(300, 300), description=f"batch {n}")
        made += len(batch)
    print(f"{made} pages in {n} files")


if __name__ == "__main__":
    main()
