import Foundation
import FoundationXML
import Mustache

/// A template split for speed: the artwork that never changes (rendered once by librsvg into a
/// recording and reused on every page, so a PDF of many sheets holds it once) and the text
/// elements, which are laid out with Pango directly: static text once into the same recording,
/// text with placeholders on each sheet.
///
/// Why: librsvg spends about half a millisecond on every text element it lays out, most of it
/// measuring glyph outlines for bounding boxes a sheet never needs, and into a recording it
/// draws text as outlines, which makes every PDF carry 100 KB of curves. Splitting took a Letter
/// sheet from ~13 ms to under 3, measured with `waybill bench sheets`.
///
/// Only what the fast path reproduces exactly is split: `<text>` elements made of text and one
/// level of `<tspan>` with single-number positions, under groups that only translate, scale or
/// rotate and set text properties. Static text outside that stays with librsvg; placeholder text
/// outside it makes `compile` return nil, and the whole template is then rendered by librsvg on
/// each sheet. Text is drawn above the artwork.
struct CompiledTemplate: Sendable {
    let staticSVG: Data
    /// Text without placeholders, drawn once into the static recording.
    let staticTexts: [TextElement]
    /// Text with placeholders, drawn on every sheet.
    let texts: [TextElement]

    struct TextElement: Sendable {
        let style: TextStyle
        let x: Double
        let y: Double
        /// From the element and its ancestors, in the SVG's user space.
        let transform: Affine
        /// The element's children as XML, placeholders unrendered.
        let content: MustacheTemplate
    }

    static func compile(_ source: String) -> CompiledTemplate? {
        guard let document = try? XMLDocument(xmlString: source, options: [.nodePreserveWhitespace]),
            let root = document.rootElement(), root.localName == "svg",
            !attributes(of: root).contains(where: { $0.1.contains("{{") })
        else { return nil }
        var rootStyle = TextStyle()
        let rootIgnored: Set<String> = ["width", "height", "viewBox", "version", "id", "x", "y"]
        guard rootStyle.apply(attributes: attributes(of: root).filter { !$0.0.contains(":") || $0.0 == "xml:space" },
            ignoring: rootIgnored)
        else { return nil }
        var split = Split()
        guard split.collect(root, style: rootStyle, transform: .identity) else { return nil }
        for node in split.nodes { node.detach() }
        return CompiledTemplate(
            staticSVG: document.xmlData(options: [.nodePreserveWhitespace]), staticTexts: split.staticTexts,
            texts: split.texts)
    }

    private struct Split {
        var staticTexts: [TextElement] = []
        var texts: [TextElement] = []
        /// Elements taken out of the static SVG because the fast path draws them.
        var nodes: [XMLElement] = []

    /// Walks the tree. False when placeholder text cannot take the fast path; static content the
    /// fast path cannot take is simply left to librsvg.
    mutating func collect(_ element: XMLElement, style: TextStyle, transform: Affine) -> Bool {
        for child in element.children ?? [] {
            guard let child = child as? XMLElement else {
                // Placeholder text between elements (a section around elements, say): not splittable.
                if child.kind == .text, child.stringValue?.contains("{{") == true { return false }
                continue
            }
            let dynamic = child.xmlString.contains("{{")
            let name = child.localName ?? ""
            let attributes = CompiledTemplate.attributes(of: child)
            if attributes.contains(where: { $0.1.contains("{{") }) { return false }
            guard name == "g" || name == "a" || name == "text" else {
                if dynamic { return false }
                continue
            }
            var childTransform = transform
            var childStyle = style
            let styleAttributes = attributes.filter { ($0.0 != "transform" && !$0.0.contains(":")) || $0.0 == "xml:space" }
            var simple = true
            if let value = attributes.first(where: { $0.0 == "transform" })?.1 {
                if let own = Affine.parse(value) { childTransform = transform.concatenating(own) } else { simple = false }
            }
            if name == "text" {
                if simple, childStyle.apply(attributes: styleAttributes),
                    let x = CompiledTemplate.number(attributes, "x", default: 0),
                    let y = CompiledTemplate.number(attributes, "y", default: 0),
                    !attributes.contains(where: { $0.0 == "dx" || $0.0 == "dy" }),
                    CompiledTemplate.isSimpleTextContent(child),
                    let content = try? MustacheTemplate(string: (child.children ?? []).map(\.xmlString).joined())
                {
                    let text = TextElement(style: childStyle, x: x, y: y, transform: childTransform, content: content)
                    if dynamic { texts.append(text) } else { staticTexts.append(text) }
                    nodes.append(child)
                } else if dynamic {
                    return false
                }
            } else {
                // A group: its text properties and transform pass down; anything else it sets
                // (opacity, clipping, filters) the fast path cannot reproduce.
                if simple, childStyle.apply(attributes: styleAttributes, ignoring: ["id", "class"]) {
                    var inner = self
                    if inner.collect(child, style: childStyle, transform: childTransform) {
                        self = inner
                    } else if dynamic {
                        return false
                    }
                } else if dynamic {
                    return false
                }
            }
        }
        return true
    }
    }

    /// Text and `<tspan>`s holding only text, with single-number positions and known properties.
    private static func isSimpleTextContent(_ text: XMLElement) -> Bool {
        for child in text.children ?? [] {
            guard let span = child as? XMLElement else { continue }
            guard span.localName == "tspan", (span.children ?? []).allSatisfy({ $0.kind == .text }) else { return false }
            var probe = TextStyle()
            let attributes = attributes(of: span)
            guard probe.apply(attributes: attributes.filter { !$0.0.contains(":") || $0.0 == "xml:space" }),
                ["x", "y", "dx", "dy"].allSatisfy({ number(attributes, $0, default: 0) != nil })
            else { return false }
        }
        return true
    }

    static func attributes(of element: XMLElement) -> [(String, String)] {
        (element.attributes ?? []).map { ($0.name ?? "", $0.stringValue ?? "") }
    }

    static func number(_ attributes: [(String, String)], _ name: String, default value: Double) -> Double? {
        guard let text = attributes.first(where: { $0.0 == name })?.1 else { return value }
        return TextStyle.length(text.trimmingCharacters(in: .whitespaces))
    }
}

/// A 2-D affine transform, SVG's `matrix(a b c d e f)`.
struct Affine: Equatable, Sendable {
    var a = 1.0, b = 0.0, c = 0.0, d = 1.0, e = 0.0, f = 0.0

    static let identity = Affine()

    /// `self` then `other` applied to the coordinates inside (SVG nesting order).
    func concatenating(_ other: Affine) -> Affine {
        Affine(
            a: a * other.a + c * other.b, b: b * other.a + d * other.b,
            c: a * other.c + c * other.d, d: b * other.c + d * other.d,
            e: a * other.e + c * other.f + e, f: b * other.e + d * other.f + f)
    }

    /// `translate`, `scale`, `rotate` (about the origin or a point) and `matrix` lists; nil for
    /// anything else (skews are left to librsvg).
    static func parse(_ text: String) -> Affine? {
        var result = Affine.identity
        var rest = Substring(text)
        while true {
            rest = rest.drop { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\t" }
            guard !rest.isEmpty else { return result }
            guard let open = rest.firstIndex(of: "("), let close = rest.firstIndex(of: ")") else { return nil }
            let name = rest[..<open].trimmingCharacters(in: .whitespaces)
            let numbers = rest[rest.index(after: open)..<close]
                .split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\t" }).compactMap { Double($0) }
            rest = rest[rest.index(after: close)...]
            let step: Affine
            switch (name, numbers.count) {
            case ("translate", 1): step = Affine(e: numbers[0])
            case ("translate", 2): step = Affine(e: numbers[0], f: numbers[1])
            case ("scale", 1): step = Affine(a: numbers[0], d: numbers[0])
            case ("scale", 2): step = Affine(a: numbers[0], d: numbers[1])
            case ("matrix", 6):
                step = Affine(a: numbers[0], b: numbers[1], c: numbers[2], d: numbers[3], e: numbers[4], f: numbers[5])
            case ("rotate", 1), ("rotate", 3):
                let angle = numbers[0] * .pi / 180
                let rotation = Affine(a: cos(angle), b: sin(angle), c: -sin(angle), d: cos(angle))
                if numbers.count == 3 {
                    step = Affine(e: numbers[1], f: numbers[2]).concatenating(rotation)
                        .concatenating(Affine(e: -numbers[1], f: -numbers[2]))
                } else {
                    step = rotation
                }
            default: return nil
            }
            result = result.concatenating(step)
        }
    }
}
