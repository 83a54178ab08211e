#!/usr/bin/python3
"""Makes degraded "scans" of routing sheets, the way scanners and phones deliver them.

    /usr/bin/python3 Fixtures/make_scans.py SHEET.pdf OUTDIR [--doc DOC.pdf]

SHEET.pdf is a routing sheet the CLI rendered (`waybill sheet ID -o SHEET.pdf`); page 1 is used.
Every fixture is derived from it by rasterizing with pdftoppm and damaging the raster with
Pillow (Debian's python3-pil), then saving it in the formats scanners send. Prints one line
per fixture: `NAME<TAB>EXPECT`, where EXPECT is `sheet` (a routing sheet must be found on the
first page) or `none` (no sheet anywhere). Nothing here is hand-edited output of Waybill.
"""
import io
import os
import random
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw, ImageFilter


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

    # Pages with no sheet at all.
    blank = Image.new("L", base150.size, 255)
    noise(blank.copy(), 0.001).save(os.path.join(out, "blank.png")); emit("blank.png", "none")
    if doc:
        rasterize(doc, 150).save(os.path.join(out, "document.png")); emit("document.png", "none")

    print("\n".join(lines))


if __name__ == "__main__":
    main()
