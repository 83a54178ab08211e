import Foundation

/// Finds the pages of a scanned PDF that are nothing but one JPEG image, so the decoder can read
/// those bytes with TurboJPEG, reduced in the DCT, instead of having poppler decode the image at
/// full size and scale it: poppler spends 100 to 300 ms on a 300-dpi page that way.
///
/// A deliberately small reader for the shape scanners write: objects found by scanning for
/// `N G obj`, the page tree from `/Root`, resources inherited down it. Anything it does not
/// understand (object streams, fonts on the page, masks, decode arrays, CMYK, several images)
/// makes that page, or the whole file, go the ordinary way through poppler.
struct PDFScanLayout {
    struct ImagePage: Equatable {
        /// The JPEG stream's bytes within the file.
        let jpeg: Range<Int>
        let pixelWidth: Int
        let pageWidthPoints: Double
    }

    /// One entry per page, in order; nil entries take the poppler path. Nil if the file's
    /// structure is not understood at all.
    static func imagePages(in data: Data, expectedPageCount: Int) -> [ImagePage?]? {
        data.withUnsafeBytes { raw -> [ImagePage?]? in
            let reader = Reader(bytes: raw.bindMemory(to: UInt8.self))
            return reader.pages(expected: expectedPageCount)
        }
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
        let bytes: UnsafeBufferPointer<UInt8>
        var offsets: [Int: Int] = [:]

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
            offsets = Self.scanObjects(bytes)
        }

        /// `N G obj` anywhere in the file; later definitions (incremental updates) win.
        static func scanObjects(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int: Int] {
            var offsets: [Int: Int] = [:]
            var index = 0
            let count = bytes.count
            while index + 3 < count {
                if bytes[index] == UInt8(ascii: "o"), bytes[index + 1] == UInt8(ascii: "b"), bytes[index + 2] == UInt8(ascii: "j"),
                    index > 4, bytes[index - 1] == UInt8(ascii: " ")
                {
                    // Walk back over "G " and "N ".
                    var cursor = index - 2
                    while cursor > 0, isDigit(bytes[cursor]) { cursor -= 1 }
                    if bytes[cursor] == UInt8(ascii: " ") {
                        var start = cursor - 1
                        while start > 0, isDigit(bytes[start]) { start -= 1 }
                        let numberStart = isDigit(bytes[start]) ? start : start + 1
                        if numberStart < cursor, let number = Int(String(decoding: bytes[numberStart..<cursor], as: UTF8.self)) {
                            offsets[number] = index + 3
                        }
                    }
                }
                index += 1
            }
            return offsets
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
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
                if bytes[index] == key[0], bytes[index..<index + key.count].elementsEqual(key) {
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
            guard index + keyword.count < bytes.count, bytes[index..<index + keyword.count].elementsEqual(keyword) else { return nil }
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
                return .name(String(decoding: bytes[start..<cursor], as: UTF8.self))
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
            let word = String(decoding: bytes[start..<cursor], as: UTF8.self)
            if word == "true" { return .boolean(true) }
            if word == "false" { return .boolean(false) }
            return cursor > start ? .other : nil
        }

        func readNumber(_ cursor: inout Int) -> Double? {
            let start = cursor
            while cursor < bytes.count, Self.isDigit(bytes[cursor]) || "+-.".utf8.contains(bytes[cursor]) { cursor += 1 }
            return Double(String(decoding: bytes[start..<cursor], as: UTF8.self))
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
