#!/usr/bin/python3
"""Makes a folder of scanned batches for the decode benchmark, the way a network scanner sends them.

    /usr/bin/python3 Benchmarks/make_decode_corpus.py SHEET.pdf OUTDIR [--files 50] [--pages 10] [--dpi 300]

Each file is an image-only PDF (one grayscale JPEG per page, DCTDecode, as scanners write them):
the routing sheet first, then document pages of text. SHEET.pdf comes from `waybill sheet`.
The JPEGs are made once with Pillow and reused, so making a large corpus is quick.
"""
import argparse
import io
import os
import random
import subprocess
import tempfile

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ("invoice total amount due payment terms net thirty days remit to account number reference "
         "order quantity description unit price subtotal tax shipping handling signature date received").split()


def rasterize(pdf, dpi):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-f", "1", "-l", "1", "-png", pdf, tmp + "/p"], check=True)
        name = next(f for f in os.listdir(tmp) if f.endswith(".png"))
        return Image.open(os.path.join(tmp, name)).convert("L")


def document_page(dpi, seed):
    rng = random.Random(seed)
    width, height = int(8.5 * dpi), int(11 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, int(dpi * 10 / 72))
    y = dpi
    while y < height - dpi:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        draw.text((dpi, y), line, fill=rng.randint(0, 60), font=font)
        y += int(dpi * 16 / 72)
    return page


def jpeg(image, quality=75):
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue(), image.size


def write_pdf(path, pages):
    """pages: list of (jpeg bytes, (width, height)); every page is Letter."""
    objects = []
    kids = []
    for data, (width, height) in pages:
        image = len(objects) + 3
        objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                       b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n" % (width, height, len(data))
                       + data + b"\nendstream")
        content = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 %d 0 R >> >> "
                       b"/Contents %d 0 R >>" % (image, image + 1))
        kids.append(image + 2)
    header = [b"<< /Type /Catalog /Pages 2 0 R >>",
              b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))]
    everything = header + objects
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(everything, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(everything) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(everything) + 1, xref))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sheet")
    parser.add_argument("out")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sheet = jpeg(rasterize(args.sheet, args.dpi))
    documents = [jpeg(document_page(args.dpi, seed)) for seed in range(5)]
    for index in range(args.files):
        pages = [sheet] + [documents[(index + k) % len(documents)] for k in range(args.pages - 1)]
        write_pdf(os.path.join(args.out, "batch-%04d.pdf" % index), pages)
    print(f"{args.files} files, {args.files * args.pages} pages, {args.files} sheets in {args.out}")


if __name__ == "__main__":
    main()
