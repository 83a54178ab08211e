public import Foundation

/// Finds the pages of a scanned PDF that are nothing but one JPEG image, so the decoder can read
/// those bytes with TurboJPEG, reduced in the DCT, instead of having poppler decode the image at
/// full size and scale it: poppler spends 100 to 300 ms on a 300-dpi page that way.
///
/// A deliberately small reader for the shape scanners write: objects found by scanning for
/// `N G obj`, the page tree from `/Root`, resources inherited down it. Anything it does not
/// understand (object streams, fonts on the page, masks, decode arrays, CMYK, several images)
/// makes that page, or the whole file, go the ordinary way through poppler.
public struct PDFScanLayout {
    public struct ImagePage: Equatable, Sendable {
        /// The JPEG stream's bytes within the file.
        public let jpeg: Range<Int>
        public let pixelWidth: Int
        public let pageWidthPoints: Double
    }

    /// One entry per page, in order; nil entries take the poppler path. Nil if the file's
    /// structure is not understood at all.
    public static func imagePages(in data: Data, expectedPageCount: Int) -> [ImagePage?]? {
        Reader(bytes: ByteWindow(data: data)).pages(expected: expectedPageCount)
    }

    /// The same for a file, read through a small window: a 500-page scan is never in memory.
    public static func imagePages(path: String, expectedPageCount: Int) -> [ImagePage?]? {
        guard let window = ByteWindow(path: path) else { return nil }
        return Reader(bytes: window).pages(expected: expectedPageCount)
    }

    indirect enum Object {
        case number(Double)
        case name(String)
        case reference(Int)
        case array([Object])
        case dictionary([String: Object])
        case boolean(Bool)
        case other
    }

    private struct Reader {
        let bytes: ByteWindow
        var offsets: [Int: Int] = [:]

        init(bytes: ByteWindow) {
            self.bytes = bytes
            offsets = bytes.scanObjects()
        }

        static func isDigit(_ byte: UInt8) -> Bool { ByteWindow.isDigit(byte) }
        static func isWhite(_ byte: UInt8) -> Bool { byte == 32 || byte == 10 || byte == 13 || byte == 9 || byte == 12 || byte == 0 }
        static func isDelimiter(_ byte: UInt8) -> Bool { "()<>[]{}/%".utf8.contains(byte) }

        func pages(expected: Int) -> [ImagePage?]? {
            guard let root = lastRootReference(), case .dictionary(let catalog)? = object(root),
                case .reference(let pagesRef)? = catalog["Pages"]
            else { return nil }
            var result: [ImagePage?] = []
            var visited = Set<Int>()
            guard collect(pagesRef, inherited: [:], into: &result, visited: &visited), result.count == expected else { return nil }
            return result
        }

        func lastRootReference() -> Int? {
            let key = Array("/Root".utf8)
            var index = bytes.count - key.count
            while index >= 0 {
                if bytes[index] == key[0], bytes.slice(index..<index + key.count) == key {
                    var cursor = index + key.count
                    if case .reference(let ref)? = parse(&cursor) { return ref }
                }
                index -= 1
            }
            return nil
        }

        func collect(_ ref: Int, inherited: [String: Object], into pages: inout [ImagePage?], visited: inout Set<Int>) -> Bool {
            guard visited.insert(ref).inserted, visited.count < 200_000, case .dictionary(let node)? = object(ref) else { return false }
            var inherit = inherited
            for key in ["Resources", "MediaBox", "CropBox"] where node[key] != nil { inherit[key] = node[key] }
            if case .array(let kids)? = node["Kids"] {
                for kid in kids {
                    guard case .reference(let kidRef) = kid, collect(kidRef, inherited: inherit, into: &pages, visited: &visited)
                    else { return false }
                }
                return true
            }
            pages.append(imagePage(inherit))
            return true
        }

        func imagePage(_ page: [String: Object]) -> ImagePage? {
            guard case .dictionary(let resources)? = resolve(page["Resources"]),
                resources["Font"] == nil, resources["Pattern"] == nil, resources["Shading"] == nil,
                case .dictionary(let xobjects)? = resolve(resources["XObject"]), xobjects.count == 1,
                case .reference(let imageRef)? = xobjects.values.first,
                case .array(let box)? = resolve(page["CropBox"] ?? page["MediaBox"]), box.count == 4,
                case .number(let x0) = box[0], case .number(let x1) = box[2],
                let offset = offsets[imageRef]
            else { return nil }
            var cursor = offset
            guard case .dictionary(let image)? = parse(&cursor),
                case .name("Image")? = image["Subtype"],
                isDCT(image["Filter"]), image["SMask"] == nil, image["Mask"] == nil, image["Decode"] == nil,
                image["ImageMask"] == nil || isFalse(image["ImageMask"]),
                isGrayOrRGB(resolve(image["ColorSpace"])),
                case .number(let width)? = resolve(image["Width"]),
                case .number(let length)? = resolve(image["Length"]),
                let start = streamStart(after: cursor), start + Int(length) <= bytes.count, length > 0
            else { return nil }
            return ImagePage(jpeg: start..<(start + Int(length)), pixelWidth: Int(width), pageWidthPoints: abs(x1 - x0))
        }

        func isDCT(_ filter: Object?) -> Bool {
            switch filter {
            case .name("DCTDecode")?: true
            case .array(let filters)? where filters.count == 1: isDCT(filters[0])
            default: false
            }
        }

        func isFalse(_ object: Object?) -> Bool {
            if case .boolean(false)? = resolve(object) { return true }
            return false
        }

        func isGrayOrRGB(_ space: Object?) -> Bool {
            switch space {
            case .name("DeviceGray")?, .name("DeviceRGB")?, .name("CalGray")?, .name("CalRGB")?: true
            case .array(let parts)? where parts.count == 2:
                if case .name("ICCBased") = parts[0], case .dictionary(let profile)? = resolveStreamDictionary(parts[1]),
                    case .number(let components)? = resolve(profile["N"])
                {
                    components == 1 || components == 3
                } else {
                    false
                }
            default: false
            }
        }

        func resolveStreamDictionary(_ object: Object) -> Object? {
            guard case .reference(let ref) = object, let offset = offsets[ref] else { return nil }
            var cursor = offset
            return parse(&cursor)
        }

        func streamStart(after cursor: Int) -> Int? {
            var index = cursor
            while index < bytes.count, Self.isWhite(bytes[index]) { index += 1 }
            let keyword = Array("stream".utf8)
            guard index + keyword.count < bytes.count, bytes.slice(index..<index + keyword.count) == keyword else { return nil }
            index += keyword.count
            if index < bytes.count, bytes[index] == 13 { index += 1 }
            if index < bytes.count, bytes[index] == 10 { index += 1 }
            return index
        }

        func object(_ ref: Int) -> Object? {
            guard let offset = offsets[ref] else { return nil }
            var cursor = offset
            return parse(&cursor)
        }

        func resolve(_ object: Object?) -> Object? {
            if case .reference(let ref)? = object { return self.object(ref) }
            return object
        }

        /// One object at `cursor`, depth-limited.
        func parse(_ cursor: inout Int, depth: Int = 0) -> Object? {
            guard depth < 32 else { return nil }
            skipWhite(&cursor)
            guard cursor < bytes.count else { return nil }
            let byte = bytes[cursor]
            if byte == UInt8(ascii: "<"), cursor + 1 < bytes.count, bytes[cursor + 1] == UInt8(ascii: "<") {
                cursor += 2
                var dictionary: [String: Object] = [:]
                while true {
                    skipWhite(&cursor)
                    guard cursor + 1 < bytes.count else { return nil }
                    if bytes[cursor] == UInt8(ascii: ">"), bytes[cursor + 1] == UInt8(ascii: ">") {
                        cursor += 2
                        return .dictionary(dictionary)
                    }
                    guard case .name(let key)? = parse(&cursor, depth: depth + 1), let value = parse(&cursor, depth: depth + 1)
                    else { return nil }
                    dictionary[key] = value
                }
            }
            if byte == UInt8(ascii: "[") {
                cursor += 1
                var array: [Object] = []
                while true {
                    skipWhite(&cursor)
                    guard cursor < bytes.count else { return nil }
                    if bytes[cursor] == UInt8(ascii: "]") {
                        cursor += 1
                        return .array(array)
                    }
                    guard let value = parse(&cursor, depth: depth + 1) else { return nil }
                    array.append(value)
                }
            }
            if byte == UInt8(ascii: "/") {
                cursor += 1
                let start = cursor
                while cursor < bytes.count, !Self.isWhite(bytes[cursor]), !Self.isDelimiter(bytes[cursor]) { cursor += 1 }
                return .name(String(decoding: bytes.slice(start..<cursor), as: UTF8.self))
            }
            if byte == UInt8(ascii: "(") {
                var level = 0
                while cursor < bytes.count {
                    let current = bytes[cursor]
                    if current == UInt8(ascii: "\\") { cursor += 2; continue }
                    if current == UInt8(ascii: "(") { level += 1 }
                    if current == UInt8(ascii: ")") { level -= 1 }
                    cursor += 1
                    if level == 0 { return .other }
                }
                return nil
            }
            if byte == UInt8(ascii: "<") {
                while cursor < bytes.count, bytes[cursor] != UInt8(ascii: ">") { cursor += 1 }
                cursor += 1
                return .other
            }
            if Self.isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") {
                let number = readNumber(&cursor)
                // `N G R` is a reference.
                var lookahead = cursor
                skipWhite(&lookahead)
                if let number, number == number.rounded(), lookahead < bytes.count, Self.isDigit(bytes[lookahead]) {
                    var after = lookahead
                    _ = readNumber(&after)
                    skipWhite(&after)
                    if after < bytes.count, bytes[after] == UInt8(ascii: "R"),
                        after + 1 >= bytes.count || Self.isWhite(bytes[after + 1]) || Self.isDelimiter(bytes[after + 1])
                    {
                        cursor = after + 1
                        return .reference(Int(number))
                    }
                }
                return number.map { .number($0) }
            }
            // true, false, null and anything else: a bare word.
            let start = cursor
            while cursor < bytes.count, !Self.isWhite(bytes[cursor]), !Self.isDelimiter(bytes[cursor]) { cursor += 1 }
            let word = String(decoding: bytes.slice(start..<cursor), as: UTF8.self)
            if word == "true" { return .boolean(true) }
            if word == "false" { return .boolean(false) }
            return cursor > start ? .other : nil
        }

        func readNumber(_ cursor: inout Int) -> Double? {
            let start = cursor
            while cursor < bytes.count, Self.isDigit(bytes[cursor]) || "+-.".utf8.contains(bytes[cursor]) { cursor += 1 }
            return Double(String(decoding: bytes.slice(start..<cursor), as: UTF8.self))
        }

        func skipWhite(_ cursor: inout Int) {
            while cursor < bytes.count {
                if Self.isWhite(bytes[cursor]) {
                    cursor += 1
                } else if bytes[cursor] == UInt8(ascii: "%") {
                    while cursor < bytes.count, bytes[cursor] != 10, bytes[cursor] != 13 { cursor += 1 }
                } else {
                    return
                }
            }
        }
    }
}

/// Random access to a PDF's bytes through a 64 KiB window: from memory, or from a file read with
/// `pread` so that memory stays small whatever the file's size. One owner (not `Sendable`).
final class ByteWindow {
    let count: Int
    private let fd: Int32
    private let data: Data?
    private var window: [UInt8] = []
    private var start = 0
    private static let size = 1 << 16

    init(data: Data) {
        self.data = data
        fd = -1
        count = data.count
    }

    init?(path: String) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return nil
        }
        count = Int(info.st_size)
        data = nil
    }

    deinit { if fd >= 0 { close(fd) } }

    subscript(index: Int) -> UInt8 {
        if index < start || index >= start + window.count { load(index) }
        return index - start < window.count ? window[index - start] : 0
    }

    func slice(_ range: Range<Int>) -> [UInt8] {
        let clamped = range.clamped(to: 0..<count)
        if let data { return Array(data[data.startIndex + clamped.lowerBound..<data.startIndex + clamped.upperBound]) }
        return read(clamped)
    }

    /// Bytes of any length, for the JPEG streams themselves.
    func read(_ range: Range<Int>) -> [UInt8] {
        if let data { return Array(data[data.startIndex + range.lowerBound..<data.startIndex + range.upperBound]) }
        var buffer = [UInt8](repeating: 0, count: range.count)
        var done = 0
        while done < range.count {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, range.count - done, off_t(range.lowerBound + done)) }
            if got <= 0 { break }
            done += got
        }
        return Array(buffer.prefix(done))
    }

    private func load(_ index: Int) {
        let from = max(0, index - Self.size / 4)
        window = read(from..<min(count, from + Self.size))
        start = from
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// Every `N G obj` in the file, streaming it once in 1 MiB chunks; later definitions
    /// (incremental updates) win.
    func scanObjects() -> [Int: Int] {
        var offsets: [Int: Int] = [:]
        let chunk = 1 << 20
        let overlap = 48
        var base = 0
        while base < count {
            let bytes = slice(base..<min(count, base + chunk + overlap))
            bytes.withUnsafeBufferPointer { buffer in
                var index = 4
                let limit = min(buffer.count - 3, chunk + 4)
                while index < limit {
                    if buffer[index] == UInt8(ascii: "o"), buffer[index + 1] == UInt8(ascii: "b"),
                        buffer[index + 2] == UInt8(ascii: "j"), buffer[index - 1] == UInt8(ascii: " ")
                    {
                        var cursor = index - 2
                        while cursor > 0, Self.isDigit(buffer[cursor]) { cursor -= 1 }
                        if buffer[cursor] == UInt8(ascii: " ") {
                            var first = cursor - 1
                            while first > 0, Self.isDigit(buffer[first]) { first -= 1 }
                            let numberStart = Self.isDigit(buffer[first]) ? first : first + 1
                            if numberStart < cursor, cursor - numberStart < 10,
                                let number = Int(String(decoding: buffer[numberStart..<cursor], as: UTF8.self))
                            {
                                offsets[number] = base + index + 3
                            }
                        }
                    }
                    index += 1
                }
            }
            base += chunk
        }
        return offsets
    }
}
