import CPango
import CZlib
import Foundation
import Synchronization

/// One font face made ready for embedding in sheet PDFs, once per writer: a subset of the face
/// (HarfBuzz's subsetter) holding every character of Windows-1252 (Latin-1 and the usual
/// typographic marks), compressed once, with its widths and ToUnicode map. Every PDF the writer
/// makes copies these bytes instead of subsetting and compressing the face again.
///
/// Why: cairo subsets and deflates each embedded face in every file it writes. For a one-sheet
/// PDF that was about 30 KB of font tables to compress, 1.5 of the 3–4 ms the sheet took.
///
/// The subset keeps the face's glyph ids (HarfBuzz's `RETAIN_GIDS`), so the glyph ids Pango
/// shapes with are the PDF's character ids: a `CIDFontType2` font with an `Identity` map.
/// Hinting is dropped: the sheet is printed, and viewers render unhinted outlines as well.
final class PDFFont: Sendable {
    /// Characters the subset covers. Text using others is drawn by cairo instead.
    static let palette: [UInt32] =
        Array(0x20...0x7E) + Array(0xA0...0xFF) + [
            0x0152, 0x0153, 0x0160, 0x0161, 0x0178, 0x017D, 0x017E, 0x0192, 0x02C6, 0x02DC, 0x2013, 0x2014, 0x2018, 0x2019,
            0x201A, 0x201C, 0x201D, 0x201E, 0x2020, 0x2021, 0x2022, 0x2026, 0x2030, 0x2039, 0x203A, 0x20AC, 0x2122,
        ]

    /// Subset tag plus PostScript name: `WBABCD+DejaVuSans`.
    let baseFont: String
    /// The deflated TrueType subset and its length before compression.
    let fontFile: [UInt8]
    let fontFileLength: Int
    /// The deflated ToUnicode CMap.
    let toUnicode: [UInt8]
    /// Advance widths (1/1000 em, as written in `/W`) of the glyphs text may use.
    let widths: [UInt32: Double]
    /// The `/W` array and the font descriptor's entries (without `/FontFile2`).
    let widthArray: String
    let descriptor: String

    /// Fonts made so far in this process, by face (`key`): a renderer made for one web request
    /// reuses what an earlier one subset, instead of paying for it again.
    private static let made = Mutex<[String: PDFFont]>([:])

    /// The face's embedding, made once per process; nil if HarfBuzz cannot subset it.
    static func make(face: OpaquePointer) -> PDFFont? {
        let key = key(face)
        if let known = made.withLock({ $0[key] }) { return known }
        guard let font = PDFFont(face: face) else { return nil }
        return made.withLock { made in
            if let raced = made[key] { return raced }
            made[key] = font
            return font
        }
    }

    /// What tells faces apart without their file names: PostScript name, the checksum the font
    /// file carries in its head table, glyph count and face index.
    static func key(_ face: OpaquePointer) -> String {
        let head = table(face, "head")
        let checksum = head.count >= 12 ? head[8..<12].map { String($0, radix: 16) }.joined() : "-"
        return "\(postScriptName(face))|\(checksum)|\(hb_face_get_glyph_count(face))|\(hb_face_get_index(face))"
    }

    /// nil if HarfBuzz cannot subset the face (the caller falls back to cairo).
    private init?(face: OpaquePointer) {
        let font = hb_font_create(face)
        defer { hb_font_destroy(font) }
        let unitsPerEm = Double(hb_face_get_upem(face))
        guard unitsPerEm > 0 else { return nil }
        let scale = 1000 / unitsPerEm

        var unicodeOf: [UInt32: UInt32] = [:]
        for character in Self.palette {
            var glyph: hb_codepoint_t = 0
            if hb_font_get_nominal_glyph(font, character, &glyph) != 0, glyph != 0, unicodeOf[glyph] == nil {
                unicodeOf[glyph] = character
            }
        }
        guard !unicodeOf.isEmpty, let input = hb_subset_input_create_or_fail() else { return nil }
        defer { hb_subset_input_destroy(input) }
        let unicodes = hb_subset_input_unicode_set(input)
        for character in Self.palette { hb_set_add(unicodes, character) }
        hb_subset_input_set_flags(input, HB_SUBSET_FLAGS_RETAIN_GIDS.rawValue | HB_SUBSET_FLAGS_NO_HINTING.rawValue)
        // Shaping happened in Pango already; a PDF needs outlines and metrics only.
        let drop = hb_subset_input_set(input, HB_SUBSET_SETS_DROP_TABLE_TAG)
        for tag in ["GSUB", "GPOS", "GDEF", "kern", "name", "hdmx", "LTSH", "VDMX", "gasp", "DSIG"] { hb_set_add(drop, Self.tag(tag)) }
        guard let subset = hb_subset_or_fail(face, input) else { return nil }
        defer { hb_face_destroy(subset) }
        let blob = hb_face_reference_blob(subset)
        defer { hb_blob_destroy(blob) }
        var length: UInt32 = 0
        guard let data = hb_blob_get_data(blob, &length), length > 0 else { return nil }
        let file = Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
        guard let compressed = Self.deflate(file) else { return nil }
        fontFile = compressed
        fontFileLength = file.count

        var widths: [UInt32: Double] = [:]
        for glyph in unicodeOf.keys {
            widths[glyph] = (Double(hb_font_get_glyph_h_advance(font, glyph)) * scale * 1000).rounded() / 1000
        }
        self.widths = widths
        var array = "["
        for glyph in widths.keys.sorted() { array += " \(glyph) [\(PDFNumber.text(widths[glyph]!))]" }
        widthArray = array + " ]"

        let name = Self.postScriptName(face)
        baseFont = Self.subsetTag(name) + "+" + name
        let head = Self.table(face, "head")
        let post = Self.table(face, "post")
        func int16(_ bytes: [UInt8], _ offset: Int) -> Double {
            guard bytes.count >= offset + 2 else { return 0 }
            return Double(Int16(bitPattern: UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])))
        }
        let box = [36, 38, 40, 42].map { PDFNumber.text((int16(head, $0) * scale).rounded()) }.joined(separator: " ")
        let italicAngle = post.count >= 8 ? (int16(post, 4) + Double(UInt16(post[6]) << 8 | UInt16(post[7])) / 65536) : 0
        let fixedPitch = post.count >= 16 && post[12...15].contains { $0 != 0 }
        func metric(_ tag: hb_ot_metrics_tag_t) -> Double {
            var position: hb_position_t = 0
            return hb_ot_metrics_get_position(font, tag, &position) != 0 ? (Double(position) * scale).rounded() : 0
        }
        let ascent = metric(HB_OT_METRICS_TAG_HORIZONTAL_ASCENDER)
        let descent = metric(HB_OT_METRICS_TAG_HORIZONTAL_DESCENDER)
        var capHeight = metric(HB_OT_METRICS_TAG_CAP_HEIGHT)
        if capHeight == 0 { capHeight = ascent }
        // Nonsymbolic (32), plus fixed pitch (1) and italic (64) where they apply.
        let flags = 32 + (fixedPitch ? 1 : 0) + (italicAngle != 0 ? 64 : 0)
        descriptor = """
            /Type /FontDescriptor /FontName /\(baseFont) /Flags \(flags) /FontBBox [\(box)] \
            /ItalicAngle \(PDFNumber.text(italicAngle)) /Ascent \(PDFNumber.text(ascent)) /Descent \(PDFNumber.text(descent)) \
            /CapHeight \(PDFNumber.text(capHeight)) /StemV 80
            """

        var cmap = """
            /CIDInit /ProcSet findresource begin
            12 dict begin
            begincmap
            /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
            /CMapName /Adobe-Identity-UCS def
            /CMapType 2 def
            1 begincodespacerange
            <0000> <FFFF>
            endcodespacerange

            """
        let pairs = unicodeOf.sorted { $0.key < $1.key }
        for start in stride(from: 0, to: pairs.count, by: 100) {
            let block = pairs[start..<min(start + 100, pairs.count)]
            cmap += "\(block.count) beginbfchar\n"
            for (glyph, character) in block { cmap += "<\(Self.hex4(glyph))> <\(Self.hex4(character))>\n" }
            cmap += "endbfchar\n"
        }
        cmap += "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
        guard let toUnicode = Self.deflate(Array(cmap.utf8)) else { return nil }
        self.toUnicode = toUnicode
    }

    static func tag(_ text: String) -> hb_tag_t {
        text.utf8.reduce(0) { $0 << 8 | hb_tag_t($1) }
    }

    private static func table(_ face: OpaquePointer, _ name: String) -> [UInt8] {
        let blob = hb_face_reference_table(face, tag(name))
        defer { hb_blob_destroy(blob) }
        var length: UInt32 = 0
        guard let data = hb_blob_get_data(blob, &length), length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
    }

    /// The face's PostScript name, reduced to what a PDF name may hold unescaped.
    private static func postScriptName(_ face: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        var size = UInt32(buffer.count)
        _ = hb_ot_name_get_utf8(face, hb_ot_name_id_t(HB_OT_NAME_ID_POSTSCRIPT_NAME), hb_language_from_string("en", -1), &size, &buffer)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        return name.isEmpty ? "Font" : name
    }

    /// Six capital letters naming this subset (PDF 32000 §9.6.4), from the name: stable across runs.
    private static func subsetTag(_ name: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        var tag = "WB"
        for _ in 0..<4 {
            tag.append(Character(Unicode.Scalar(UInt8(65 + hash % 26))))
            hash /= 26
        }
        return tag
    }

    static func hex4(_ value: UInt32) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [12, 8, 4, 0].map { digits[Int((value >> UInt32($0)) & 0xF)] }, as: UTF8.self)
    }

    /// zlib at the default level; nil only if zlib fails.
    static func deflate(_ bytes: [UInt8]) -> [UInt8]? {
        var size = compressBound(uLong(bytes.count))
        var output = [UInt8](repeating: 0, count: Int(size))
        let status = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { compress2($0.baseAddress, &size, input.baseAddress, uLong(input.count), Z_DEFAULT_COMPRESSION) }
        }
        guard status == Z_OK else { return nil }
        output.removeLast(output.count - Int(size))
        return output
    }
}

/// One zlib stream reused for every page a writer compresses: `compress2` allocates and clears
/// zlib's 256 KB of state on each call, which cost more than compressing a page's few KB.
final class Deflater {
    /// On the heap: zlib keeps the stream's address and checks it on every call.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let ready: Bool

    init() {
        stream.initialize(to: z_stream())
        ready = deflateInit_(stream, Z_DEFAULT_COMPRESSION, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    deinit {
        if ready { deflateEnd(stream) }
        stream.deallocate()
    }

    /// nil only if zlib fails.
    func deflate(_ bytes: [UInt8]) -> [UInt8]? {
        guard ready, deflateReset(stream) == Z_OK else { return nil }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))))
        let status = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                return CZlib.deflate(stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeLast(Int(stream.pointee.avail_out))
        return output
    }
}

/// Numbers as PDF writes them: no exponent, at most four decimals, no trailing zeros.
enum PDFNumber {
    static func text(_ value: Double) -> String {
        var bytes: [UInt8] = []
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Written straight into the buffer: a page has a few hundred numbers, and going through
    /// `String` for each was a tenth of the writer's time.
    static func append(_ value: Double, to bytes: inout [UInt8]) {
        var scaled = (value * 10_000).rounded()
        guard scaled.isFinite, abs(scaled) < 9e15 else { return bytes.append(0x30) }
        if scaled == 0 { return bytes.append(0x30) }
        if scaled < 0 {
            bytes.append(0x2D)  // -
            scaled = -scaled
        }
        let units = UInt64(scaled)
        appendDecimal(units / 10_000, to: &bytes)
        var fraction = units % 10_000
        guard fraction != 0 else { return }
        bytes.append(0x2E)  // .
        var divisor: UInt64 = 1000
        while fraction != 0 {
            bytes.append(0x30 + UInt8(fraction / divisor))
            fraction %= divisor
            divisor /= 10
        }
    }

    static func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &bytes) }
        bytes.append(0x30 + UInt8(value % 10))
    }

    /// Four upper-case hex digits (a glyph id in a string).
    static func appendHex4(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in [12, 8, 4, 0] as [UInt32] {
            let digit = UInt8((value >> shift) & 0xF)
            bytes.append(digit < 10 ? 0x30 + digit : 0x37 + digit)
        }
    }
}
