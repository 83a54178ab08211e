#!/usr/bin/python3
"""Makes degraded "scans" of routing sheets, the way scanners and phones deliver them.

    /usr/bin/python3 Fixtures/make_scans.py SHEET.pdf OUTDIR [--doc DOC.pdf]

SHEET.pdf is a routing sheet the CLI rendered (`waybill sheet ID -o SHEET.pdf`); page 1 is used.
Every fixture is derived from it by rasterizing with pdftoppm and damaging the raster with
Pillow (Debian's python3-pil), then saving it in the formats scanners send: PNG, JPEG, TIFF
(G4, LZW, JPEG, Deflate) and PDFs of one image per page (JPEG, CCITT G4, JBIG2, JPEG 2000),
whose PDF and JBIG2 wrappers are written here. Prints one line
per fixture: `NAME<TAB>EXPECT`, where EXPECT is `sheet` (a routing sheet must be found on the
first page) or `none` (no sheet anywhere). Nothing here is hand-edited output of Waybill.
"""
import io
import os
import random
import struct
import subprocess
import sys
import tempfile

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps, TiffImagePlugin


def rasterize(pdf, dpi, gray=True):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-png"]
        if gray:
            args.append("-gray")
        subprocess.run(args + [pdf, os.path.join(tmp, "p")], check=True)
        name = next(f for f in os.listdir(tmp) if f.endswith(".png"))
        image = Image.open(os.path.join(tmp, name))
        return image.convert("L") if gray else image.convert("RGB")


def noise(image, amount, seed=7):
    rng = random.Random(seed)
    pixels = image.load()
    width, height = image.size
    for _ in range(int(width * height * amount)):
        x, y = rng.randrange(width), rng.randrange(height)
        pixels[x, y] = 0 if rng.random() < 0.5 else 255
    return image


def sensor_noise(image, sigma, seed=11):
    rng = random.Random(seed)
    data = bytes(max(0, min(255, int(v + rng.gauss(0, sigma)))) for v in image.tobytes())
    return Image.frombytes("L", image.size, data)


def low_toner(image):
    # Black prints as mid gray: what an almost empty cartridge leaves.
    return image.point(lambda v: 110 + v * 145 // 255)


def darken(image, gradient):
    a = image.tobytes()
    g = gradient.tobytes()
    return Image.frombytes("L", image.size, bytes(max(0, x - y) for x, y in zip(a, g)))


def blot(image, box_fraction):
    draw = ImageDraw.Draw(image)
    width, height = image.size
    x0, y0, x1, y1 = box_fraction
    draw.rectangle([x0 * width, y0 * height, x1 * width, y1 * height], fill=30)
    return image


def save_pdf(images, path, dpi):
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])


# PDFs whose pages are one image each, written here so the filter is ours to choose: scanners
# send CCITT G4 (`/CCITTFaxDecode`), JBIG2 (`/JBIG2Decode`), JPEG 2000 (`/JPXDecode`) and JPEG.

def g4_bytes(image):
    """T.6 (CCITT Group 4) bytes of a 1-bit image, coded white for white: libtiff codes 0 bits
    as white runs, and Pillow's 1-bit TIFF is BlackIsZero, so the image is inverted first. One
    strip, so the bytes are one T.6 stream."""
    inverted = ImageOps.invert(image.convert("L")).convert("1")
    buffer = io.BytesIO()
    # Pillow cuts strips of 64 KB uncompressed (STRIP_SIZE, read at save time in 9.4 and 13).
    strip_size = TiffImagePlugin.STRIP_SIZE
    TiffImagePlugin.STRIP_SIZE = 1 << 30
    try:
        inverted.save(buffer, "TIFF", compression="group4")
    finally:
        TiffImagePlugin.STRIP_SIZE = strip_size
    tiff = Image.open(io.BytesIO(buffer.getvalue()))
    offsets, lengths = tiff.tag_v2[273], tiff.tag_v2[279]
    assert len(offsets) == 1, "Pillow wrote the G4 image in several strips"
    return buffer.getvalue()[offsets[0]:offsets[0] + lengths[0]]


def jbig2_bytes(image, dpi):
    """An embedded JBIG2 stream (ITU T.88 §7.2-7.4, annex D.3): a page information segment and
    one immediate generic region coded with MMR (which is T.6, so G4 bytes serve). PDF wants no
    file header, end-of-page or end-of-file segment in it (PDF 1.7 §7.4.7). Debian has no JBIG2
    encoder; this is the shape scanners that emit lossless generic-region JBIG2 write."""
    width, height = image.size
    def segment(number, kind, data):
        # Number, flags (type; 1-byte page association), no referred-to segments, page 1, length.
        return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data
    page_info = struct.pack(">IIIIBH", width, height, round(dpi / 0.0254), round(dpi / 0.0254), 0x01, 0)
    region_info = struct.pack(">IIIIB", width, height, 0, 0, 0)  # at (0, 0), combined with OR
    region = region_info + bytes([0x01]) + g4_bytes(image)  # generic region flags: MMR = 1
    return segment(0, 48, page_info) + segment(1, 38, region)


def image_pdf(path, pages):
    """A minimal PDF: catalog, page tree, and per page one image XObject drawn over the whole
    MediaBox. `pages` holds dicts: width, height (pixels), points (w, h), filter, data,
    colorspace, bits, and parms (a DecodeParms dictionary's text) when the filter takes one."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for page in pages:
        first = len(objects) + 1
        w, h = page["points"]
        content = f"q {w:g} 0 0 {h:g} 0 0 cm /Im0 Do Q".encode()
        parms = f" /DecodeParms {page['parms']}" if page.get("parms") else ""
        space = f" /ColorSpace /{page['colorspace']}" if page.get("colorspace") else ""
        bits = f" /BitsPerComponent {page['bits']}" if page.get("bits") else ""
        image = (f"<< /Type /XObject /Subtype /Image /Width {page['width']} /Height {page['height']}{space}{bits}"
                 f" /Filter /{page['filter']}{parms} /Length {len(page['data'])} >>\nstream\n").encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:g} {h:g}] /Contents {first + 1} 0 R"
                       f" /Resources << /XObject << /Im0 {first + 2} 0 R >> >> >>")
        objects.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
        objects.append(image + page["data"] + b"\nendstream")
        kids.append(f"{first} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    write_pdf(path, objects)


def write_pdf(path, objects):
    """Objects 1… (text or bytes, object 1 the catalog) with their xref table and trailer."""
    body = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, item in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + (item.encode() if isinstance(item, str) else item) + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open(path, "wb") as f:
        f.write(body)


def layered_pdf(path, background, mask):
    """A compact layered (MRC) page, as scanners' "compact PDF" modes write: a low-resolution
    JPEG background under a full-resolution 1-bit G4 mask painted black (/ImageMask), both
    drawn over the whole MediaBox. `background` and `mask` are page dicts (jpeg_page, g4_page)."""
    w, h = mask["points"]
    content = f"q {w:g} 0 0 {h:g} 0 0 cm /Bg Do Q q 0 g {w:g} 0 0 {h:g} 0 0 cm /Fg Do Q".encode()
    bg = (f"<< /Type /XObject /Subtype /Image /Width {background['width']} /Height {background['height']}"
          f" /ColorSpace /{background['colorspace']} /BitsPerComponent 8 /Filter /DCTDecode"
          f" /Length {len(background['data'])} >>\nstream\n").encode() + background["data"] + b"\nendstream"
    fg = (f"<< /Type /XObject /Subtype /Image /Width {mask['width']} /Height {mask['height']} /ImageMask true"
          f" /Filter /CCITTFaxDecode /DecodeParms {mask['parms']} /Length {len(mask['data'])} >>\nstream\n").encode() \
        + mask["data"] + b"\nendstream"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:g} {h:g}] /Contents 4 0 R"
        f" /Resources << /XObject << /Bg 5 0 R /Fg 6 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream", bg, fg]
    write_pdf(path, objects)


def letter(image, dpi=(300, 300)):
    return (image.width * 72 / dpi[0], image.height * 72 / dpi[1])


def g4_page(image, dpi=(300, 300)):
    bw = image.convert("1")
    return {"width": bw.width, "height": bw.height, "points": letter(bw, dpi), "filter": "CCITTFaxDecode",
            "parms": f"<< /K -1 /Columns {bw.width} /Rows {bw.height} /BlackIs1 false >>",
            "colorspace": "DeviceGray", "bits": 1, "data": g4_bytes(bw)}


def jbig2_page(image, dpi=300):
    bw = image.convert("1")
    return {"width": bw.width, "height": bw.height, "points": letter(bw, (dpi, dpi)), "filter": "JBIG2Decode",
            "colorspace": "DeviceGray", "bits": 1, "data": jbig2_bytes(bw, dpi)}


def jpx_page(image, dpi=300):
    # The colour space and depth come from the JPEG 2000 stream itself (PDF 1.7 §7.4.9).
    buffer = io.BytesIO()
    image.save(buffer, "JPEG2000", quality_mode="rates", quality_layers=[20], irreversible=True)
    return {"width": image.width, "height": image.height, "points": letter(image, (dpi, dpi)), "filter": "JPXDecode",
            "data": buffer.getvalue()}


def jpeg_page(image, dpi=300, quality=80):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return {"width": image.width, "height": image.height, "points": letter(image, (dpi, dpi)), "filter": "DCTDecode",
            "colorspace": "DeviceRGB" if image.mode == "RGB" else "DeviceGray", "bits": 8, "data": buffer.getvalue()}


def document_page(size, seed):
    """A page of "text": rows of word-like blocks, as a letter looks to a barcode reader."""
    rng = random.Random(seed)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    width, height = size
    margin = width // 10
    y = height // 10
    while y < height * 0.9:
        x = margin
        while x < width - margin:
            word = rng.randrange(width // 60, width // 12)
            draw.rectangle([x, y, min(x + word, width - margin), y + height // 130], fill=20)
            x += word + width // 80
        y += height // 45
    return page


def phone_photo(sheet, seed=5):
    """The sheet on a desk, photographed from above at a slant: a 12-megapixel colour frame, a
    keystone of about 12 % (the far edge narrower), light falling off across the frame and a
    warm cast, saved as a phone saves it."""
    frame_w, frame_h = 3024, 4032
    paper = sheet.convert("RGB").resize((2200, 2847), Image.LANCZOS)
    # Where the paper's corners land in the frame: top edge narrower than the bottom one.
    inset = 0.12 * paper.width / 2
    left, top = (frame_w - paper.width) / 2, (frame_h - paper.height) / 2
    corners = [(left + inset, top), (left + paper.width - inset, top),
               (left + paper.width + 20, top + paper.height), (left - 20, top + paper.height)]
    source = [(0, 0), (paper.width, 0), (paper.width, paper.height), (0, paper.height)]
    coeffs = perspective_coefficients(corners, source)
    desk = Image.new("RGB", (frame_w, frame_h), (92, 74, 58))
    mask = Image.new("L", paper.size, 255).transform((frame_w, frame_h), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    warped = paper.transform((frame_w, frame_h), Image.PERSPECTIVE, coeffs, Image.BICUBIC)
    desk.paste(warped, (0, 0), mask)
    # Light from the upper left, down to about 60 % in the far corner, slightly yellow.
    light = Image.radial_gradient("L").crop((128, 128, 256, 256)).resize((frame_w, frame_h), Image.BILINEAR)
    light = light.point(lambda v: 255 - v * 100 // 255)
    shade = Image.merge("RGB", (light, light.point(lambda v: v * 245 // 255), light.point(lambda v: v * 215 // 255)))
    return ImageChops.multiply(desk, shade)


def perspective_coefficients(target, source):
    """The eight coefficients Image.transform(PERSPECTIVE) wants: for each output pixel in
    `target`'s quadrilateral, where to sample in `source` (solves the 8x8 system by elimination)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y]); rhs.append(v)
    n = 8
    m = [row + [value] for row, value in zip(rows, rhs)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                factor = m[r][col] / m[col][col]
                m[r] = [a - factor * b for a, b in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def main():
    sheet, out = sys.argv[1], sys.argv[2]
    doc = sys.argv[sys.argv.index("--doc") + 1] if "--doc" in sys.argv else None
    os.makedirs(out, exist_ok=True)
    lines = []

    def emit(name, expect):
        lines.append(f"{name}\t{expect}")

    base150 = rasterize(sheet, 150)
    base300 = rasterize(sheet, 300)
    base100 = rasterize(sheet, 100)

    # Resolutions and formats scanners produce.
    base100.save(os.path.join(out, "dpi100.png")); emit("dpi100.png", "sheet")
    base300.save(os.path.join(out, "dpi300.png")); emit("dpi300.png", "sheet")
    rasterize(sheet, 600).save(os.path.join(out, "dpi600.jpg"), quality=85); emit("dpi600.jpg", "sheet")
    fax = rasterize(sheet, 204).resize((int(8.5 * 204), int(11 * 98))).convert("1")
    fax.save(os.path.join(out, "fax-204x98.tif"), compression="group4", dpi=(204, 98)); emit("fax-204x98.tif", "sheet")
    g4 = base300.convert("1")
    pages = [g4, Image.new("1", g4.size, 1), g4.rotate(180)]
    pages[0].save(os.path.join(out, "multipage-g4.tif"), compression="group4", save_all=True, append_images=pages[1:], dpi=(300, 300))
    emit("multipage-g4.tif", "sheet")
    base150.save(os.path.join(out, "lzw.tif"), compression="tiff_lzw"); emit("lzw.tif", "sheet")
    base150.convert("RGB").save(os.path.join(out, "jpeg-in.tif"), compression="jpeg"); emit("jpeg-in.tif", "sheet")
    alpha = base150.convert("RGBA"); alpha.putalpha(255)
    alpha.save(os.path.join(out, "alpha.tif"), compression="tiff_deflate"); emit("alpha.tif", "sheet")
    save_pdf([base300.convert("RGB")], os.path.join(out, "scan-jpeg.pdf"), 300); emit("scan-jpeg.pdf", "sheet")
    save_pdf([base150], os.path.join(out, "scan-150.pdf"), 150); emit("scan-150.pdf", "sheet")

    # PDFs of one image per page in the other codecs scanners use, bilevel ones thresholded as
    # a scanner's text mode does. Poppler 22.12 (Debian 12) decodes the CCITT streams exactly
    # but not every MMR-coded JBIG2 one that jbig2dec reads exactly: rows after a blank row
    # under several runs (consecutive pass modes) come out wrong, about 0.5 % of the sheet's
    # pixels under its large text (its codes still read), and the whole of a dithered page or
    # of the text page in mixed-codecs.pdf (which then tests only that such a page costs no
    # crash and shows no sheet).
    bilevel = base300.convert("1", dither=Image.Dither.NONE)
    image_pdf(os.path.join(out, "scan-g4.pdf"), [g4_page(bilevel)]); emit("scan-g4.pdf", "sheet")
    image_pdf(os.path.join(out, "scan-jbig2.pdf"), [jbig2_page(bilevel)]); emit("scan-jbig2.pdf", "sheet")
    # Colour at 200 dpi, as scanners send JPEG 2000 (poppler decodes it whole: 1.3 s at 300 dpi).
    image_pdf(os.path.join(out, "scan-jpx.pdf"), [jpx_page(rasterize(sheet, 200, gray=False), 200)]); emit("scan-jpx.pdf", "sheet")
    fax_bilevel = rasterize(sheet, 204).resize((int(8.5 * 204), int(11 * 98))).convert("1", dither=Image.Dither.NONE)
    image_pdf(os.path.join(out, "fax-204x98.pdf"), [g4_page(fax_bilevel, (204, 98))]); emit("fax-204x98.pdf", "sheet")
    # The sheet in G4, then a document in each of the others: the sheet on page 1 only.
    text = document_page(base300.size, 3)
    image_pdf(os.path.join(out, "mixed-codecs.pdf"), [
        g4_page(bilevel), jbig2_page(text.convert("1", dither=Image.Dither.NONE)),
        jpx_page(document_page(base150.size, 4).convert("RGB"), 150), jpeg_page(document_page(base150.size, 5), 150)])
    emit("mixed-codecs.pdf", "sheet")

    # A compact layered page: the sheet's ink only in the 300-dpi mask, over a pale 75-dpi
    # colour background (the codes are not readable from the background alone).
    pale = rasterize(sheet, 75, gray=False).filter(ImageFilter.GaussianBlur(2)).point(lambda v: 200 + v * 55 // 255)
    layered_pdf(os.path.join(out, "compact-layered.pdf"), jpeg_page(pale, 75, quality=50), g4_page(bilevel))
    emit("compact-layered.pdf", "sheet")

    # Orientation and skew.
    for angle in (90, 180, 270):
        base150.rotate(angle, expand=True).save(os.path.join(out, f"rot{angle}.png")); emit(f"rot{angle}.png", "sheet")
    for angle in (-7, 4):
        base300.rotate(angle, expand=True, fillcolor=255, resample=Image.BICUBIC).save(
            os.path.join(out, f"skew{angle}.png"))
        emit(f"skew{angle}.png", "sheet")

    # Damage.
    base150.save(os.path.join(out, "jpeg-q25.jpg"), quality=25); emit("jpeg-q25.jpg", "sheet")
    noise(base150.copy(), 0.02).save(os.path.join(out, "salt-pepper.png")); emit("salt-pepper.png", "sheet")
    sensor_noise(base150, 40).save(os.path.join(out, "sensor-noise.png")); emit("sensor-noise.png", "sheet")
    base150.filter(ImageFilter.GaussianBlur(1.2)).save(os.path.join(out, "blur.png")); emit("blur.png", "sheet")
    low_toner(base150).save(os.path.join(out, "low-toner.png")); emit("low-toner.png", "sheet")
    gradient = Image.linear_gradient("L").resize(base150.size).point(lambda v: v * 100 // 255)
    darken(base150, gradient).save(os.path.join(out, "uneven-light.jpg"), quality=70); emit("uneven-light.jpg", "sheet")
    # A blot over one code: the QR (upper right) or the Code 128 (bottom third).
    blot(base150.copy(), (0.68, 0.13, 0.95, 0.33)).save(os.path.join(out, "blot-qr.png")); emit("blot-qr.png", "sheet")
    blot(base150.copy(), (0.10, 0.79, 0.95, 0.88)).save(os.path.join(out, "blot-code128.png")); emit("blot-code128.png", "sheet")
    # Two-up at half size, as a copier's "2 in 1" makes it.
    half = base300.resize((base300.width // 2, base300.height // 2), Image.LANCZOS)
    twoup = Image.new("L", (base300.height, base300.width), 255)
    twoup.paste(half.rotate(90, expand=True), (0, 0))
    twoup.save(os.path.join(out, "two-up.png")); emit("two-up.png", "sheet")

    # A phone photo of the sheet on a desk, and the same held sideways.
    photo = phone_photo(base300)
    photo.save(os.path.join(out, "phone-photo.jpg"), quality=70); emit("phone-photo.jpg", "sheet")
    photo.rotate(90, expand=True).save(os.path.join(out, "phone-photo-rot90.jpg"), quality=70)
    emit("phone-photo-rot90.jpg", "sheet")

    # Pages with no sheet at all.
    blank = Image.new("L", base150.size, 255)
    noise(blank.copy(), 0.001).save(os.path.join(out, "blank.png")); emit("blank.png", "none")
    if doc:
        rasterize(doc, 150).save(os.path.join(out, "document.png")); emit("document.png", "none")

    print("\n".join(lines))


if __name__ == "__main__":
    main()
