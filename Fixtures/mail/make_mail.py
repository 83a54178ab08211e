#!/usr/bin/env python3
"""Writes the hand-shaped scanner mails that Tests/WaybillMIMETests read.

Each message is built as text so that its oddities (a transfer encoding on a multipart,
garbage inside base64, a missing closing boundary) survive exactly; the standard library's
email package would repair them. Payloads are tiny stand-ins (`%PDF-1.4` and a few bytes),
since the MIME layer only extracts and never looks inside. Run: /usr/bin/python3 make_mail.py
"""
import base64
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PDF2 = b"%PDF-1.7\n" + bytes(range(256)) + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
TIFF = b"II*\x00\x08\x00\x00\x00\x00\x00"

HEAD = (
    "From: Canon iR-ADV C5535 <scanner@office.example>\n"
    "To: inbox@waybill.example\n"
    "Date: Tue, 04 Mar 2025 09:15:30 +0100\n"
)


def b64(data, width=76):
    text = base64.b64encode(data).decode()
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


def write(name, text, crlf=True):
    data = text.encode("utf-8") if isinstance(text, str) else text
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def canon_qp_multipart():
    # Canon devices put the body's transfer encoding on the multipart itself (RFC 2045 §6.4 forbids it).
    return HEAD + f"""Subject: Scan from Canon
Message-ID: <canon-0001@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="----=_Part_0_1"
Content-Transfer-Encoding: quoted-printable

This is a multi-part message in MIME format.
------=_Part_0_1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Attached: scanned document (1 page) =E9t=E9=20
------=_Part_0_1
Content-Type: application/pdf; name="Scan_0001.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="Scan_0001.pdf"

{b64(PDF)}
------=_Part_0_1--
"""


def octet_stream_pdf():
    return HEAD + f"""Subject: octet-stream PDFs
Message-ID: <octet@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: application/octet-stream; name="scan.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

{b64(PDF2)}
--b1
Content-Type: image/tiff
Content-Transfer-Encoding: base64

{b64(TIFF)}
--b1--
"""


def inline_image():
    return HEAD + f"""Subject: Photo
Message-ID: <inline@office.example>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<html><body><p>See <img src="cid:img1"></p></body></html>
--rel
Content-Type: image/jpeg; name="photo.jpg"
Content-Disposition: inline; filename="photo.jpg"
Content-ID: <img1>
Content-Transfer-Encoding: base64

{b64(JPEG)}
--rel
Content-Type: image/png
Content-Disposition: inline
Content-Transfer-Encoding: base64

{b64(PNG)}
--rel--
"""


def encoded_filenames():
    rfc2047 = "=?UTF-8?B?" + base64.b64encode("Überweisung März.pdf".encode()).decode() + "?="
    return HEAD + f"""Subject: =?UTF-8?Q?Scans_f=C3=BCr_Andr=C3=A9?=
Message-ID: <encoded@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="enc"

--enc
Content-Type: text/plain; charset=utf-8

Three files.
--enc
Content-Type: application/pdf; name="{rfc2047}"
Content-Transfer-Encoding: base64

{b64(PDF)}
--enc
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''Scan%20%C3%A9t%C3%A9.pdf
Content-Transfer-Encoding: base64

{b64(PDF2)}
--enc
Content-Type: image/tiff
Content-Disposition: attachment;
 filename*0*=UTF-8''Rechnung%20Nr.%20;
 filename*1*=2025-%C3%B6.tif
Content-Transfer-Encoding: base64

{b64(TIFF)}
--enc--
"""


def html_only():
    return HEAD + f"""Subject: HTML only
Message-ID: <html-only@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="h"

--h
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {{ color: red; }}</style></head><body><p>Your scan is attached=
.</p><p>Pages: 2 &amp; more</p></body></html>
--h
Content-Type: application/pdf; name="doc.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--h--
"""


def forwarded():
    inner = HEAD + f"""Subject: Original scan
Message-ID: <inner@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain

inner body
--inner
Content-Type: application/pdf; name="inner.pdf"
Content-Transfer-Encoding: base64

{b64(PDF2)}
--inner--
"""
    return """From: Alice <alice@office.example>
To: inbox@waybill.example
Date: Wed, 05 Mar 2025 10:00:00 +0000
Subject: Fwd: Original scan
Message-ID: <outer@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=us-ascii

Forwarding the scan below.
--outer
Content-Type: message/rfc822
Content-Disposition: inline

""" + inner + """
--outer--
"""


def traversal():
    passwd = b64(b"root:x:0:0\n")
    long_name = "A" * 300
    windows = "..\\\\..\\\\Windows\\\\evil\x01name.pdf"
    return HEAD + f"""Subject: hostile names
Message-ID: <traversal@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="t"

--t
Content-Type: application/octet-stream; name="../../etc/passwd"
Content-Transfer-Encoding: base64

{passwd}
--t
Content-Type: application/pdf
Content-Disposition: attachment; filename="{windows}"
Content-Transfer-Encoding: base64

{b64(PDF)}
--t
Content-Type: application/pdf
Content-Disposition: attachment; filename="...hidden.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--t
Content-Type: application/pdf
Content-Disposition: attachment; filename="{long_name}.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--t--
"""


def deep_nesting(depth):
    text = HEAD + "Subject: deep\nMIME-Version: 1.0\n"
    for level in range(depth):
        text += f'Content-Type: multipart/mixed; boundary="d{level}"\n\n--d{level}\n'
    text += f"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{b64(PDF)}\n"
    for level in reversed(range(depth)):
        text += f"--d{level}--\n"
    return text


def garbage_base64():
    lines = b64(PDF2, width=40).split("\n")
    noisy = []
    for i, line in enumerate(lines):
        # Stray characters a relay or a broken encoder leaves behind: not in the base64 alphabet.
        noisy.append(line[:10] + "!*" + line[10:20] + " \t" + line[20:] + ("~" if i % 2 else ""))
    return HEAD + """Subject: noisy base64
Message-ID: <garbage@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="g"

--g
Content-Type: application/pdf; name="noisy.pdf"
Content-Transfer-Encoding: base64

""" + "\n".join(noisy) + """
--g--
"""


def missing_boundary():
    return HEAD + f"""Subject: cut short
Message-ID: <truncated@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: application/pdf; name="first.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--m
Content-Type: application/pdf; name="second.pdf"
Content-Transfer-Encoding: base64

{b64(PDF2)}
"""


def undecodable():
    # The second part's headers end at a boundary: it has no content at all.
    return HEAD + f"""Subject: one good part
Message-ID: <undecodable@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="u"

--u
Content-Type: application/pdf; name="good.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
--u
Content-Type: application/pdf; name="empty.pdf"
--u--
"""


def undecodable_only():
    return HEAD + """Subject: nothing usable
Message-ID: <undecodable-only@office.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="u"

--u
Content-Type: text/plain

The scan should be attached.
--u
Content-Type: application/pdf; name="empty.pdf"
--u--
"""


def plain_only():
    return HEAD + """Subject: no attachments
Message-ID: <plain@office.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Just text, caf\u00e9.
"""


def main():
    write("canon-qp-multipart.eml", canon_qp_multipart())
    write("octet-stream-pdf.eml", octet_stream_pdf())
    write("inline-image.eml", inline_image())
    write("encoded-filenames.eml", encoded_filenames())
    write("html-only.eml", html_only())
    write("forwarded.eml", forwarded())
    write("traversal.eml", traversal())
    write("deep-nesting.eml", deep_nesting(40))
    write("nesting-8.eml", deep_nesting(8))
    write("garbage-base64.eml", garbage_base64())
    write("missing-boundary.eml", missing_boundary())
    write("undecodable-part.eml", undecodable())
    write("undecodable-only.eml", undecodable_only())
    write("plain-only.eml", plain_only())
    # The same message as canon-qp-multipart.eml with bare LF line endings.
    write("canon-qp-multipart-lf.eml", canon_qp_multipart(), crlf=False)
    write("empty.eml", b"", crlf=False)
    write("random-bytes.bin", random.Random(5322).randbytes(2048), crlf=False)
    # The payloads, so tests compare decoded bytes with the originals.
    for name, data in [("payload.pdf", PDF), ("payload2.pdf", PDF2), ("payload.jpg", JPEG),
                       ("payload.png", PNG), ("payload.tif", TIFF)]:
        write(name, data, crlf=False)


if __name__ == "__main__":
    main()
