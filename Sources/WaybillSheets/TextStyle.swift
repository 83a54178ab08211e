import Foundation

/// The SVG text properties the fast text path understands, inherited down the tree as SVG does.
/// Anything outside this set sends the element (or the whole template) to librsvg instead.
struct TextStyle: Equatable, Sendable {
    var fontFamily = "sans-serif"
    var fontSize = 16.0
    var fontWeight = 400
    var italic = false
    var stretch = Stretch.normal
    var fill: RGB? = RGB(red: 0, green: 0, blue: 0)
    var fillOpacity = 1.0
    var letterSpacing = 0.0
    var anchor = Anchor.start
    var preserveSpace = false

    enum Anchor: Equatable, Sendable { case start, middle, end }

    enum Stretch: Int, Equatable, Sendable {
        // Pango's PangoStretch values.
        case ultraCondensed = 0, extraCondensed, condensed, semiCondensed, normal, semiExpanded, expanded
        case extraExpanded, ultraExpanded
    }

    struct RGB: Equatable, Sendable {
        var red: Double
        var green: Double
        var blue: Double
    }

    /// Attributes that carry no style or that the fast path handles itself.
    static let structuralAttributes: Set<String> = ["x", "y", "dx", "dy", "id"]

    /// Applies one presentation attribute or CSS declaration. False when the value or property is
    /// not one the fast path can reproduce exactly.
    mutating func apply(_ name: String, _ rawValue: String) -> Bool {
        let value = rawValue.trimmingCharacters(in: .whitespaces)
        if value == "inherit" { return true }
        switch name {
        case "font-family":
            fontFamily = value.replacingOccurrences(of: "'", with: "").replacingOccurrences(of: "\"", with: "")
        case "font-size":
            guard let size = Self.length(value), size > 0 else { return false }
            fontSize = size
        case "font-weight":
            switch value {
            case "normal": fontWeight = 400
            case "bold": fontWeight = 700
            case "bolder": fontWeight = min(900, fontWeight + 300)
            case "lighter": fontWeight = max(100, fontWeight - 300)
            default:
                guard let weight = Int(value), (1...1000).contains(weight) else { return false }
                fontWeight = weight
            }
        case "font-style":
            switch value {
            case "normal": italic = false
            case "italic", "oblique": italic = true
            default: return false
            }
        case "font-stretch":
            let names: [String: Stretch] = [
                "ultra-condensed": .ultraCondensed, "extra-condensed": .extraCondensed, "condensed": .condensed,
                "semi-condensed": .semiCondensed, "normal": .normal, "semi-expanded": .semiExpanded,
                "expanded": .expanded, "extra-expanded": .extraExpanded, "ultra-expanded": .ultraExpanded,
            ]
            guard let stretch = names[value] else { return false }
            self.stretch = stretch
        case "fill":
            if value == "none" {
                fill = nil
            } else {
                guard let color = Self.color(value) else { return false }
                fill = color
            }
        case "fill-opacity":
            guard let opacity = Double(value), (0...1).contains(opacity) else { return false }
            fillOpacity = opacity
        case "letter-spacing":
            if value == "normal" {
                letterSpacing = 0
            } else {
                guard let spacing = Self.length(value) else { return false }
                letterSpacing = spacing
            }
        case "text-anchor":
            switch value {
            case "start": anchor = .start
            case "middle": anchor = .middle
            case "end": anchor = .end
            default: return false
            }
        case "xml:space", "space":
            preserveSpace = value == "preserve"
        case "stroke":
            return value == "none"
        case "font-variant", "text-rendering", "shape-rendering", "color-rendering", "image-rendering":
            return value == "normal" || value == "auto" || value == "optimizeLegibility" || value == "geometricPrecision"
        default:
            return false
        }
        return true
    }

    /// Applies every attribute of an element, including the declarations in its `style`.
    mutating func apply(attributes: [(String, String)], ignoring ignored: Set<String> = structuralAttributes) -> Bool {
        for (name, value) in attributes where !ignored.contains(name) {
            if name == "style" {
                for declaration in value.split(separator: ";") {
                    let parts = declaration.split(separator: ":", maxSplits: 1).map {
                        String($0).trimmingCharacters(in: .whitespaces)
                    }
                    guard parts.count == 2 else { continue }
                    guard apply(parts[0], parts[1]) else { return false }
                }
            } else {
                guard apply(name, value) else { return false }
            }
        }
        return true
    }

    /// User units: plain numbers and `px`; `pt` is 4/3 px as in CSS.
    static func length(_ text: String) -> Double? {
        if text.hasSuffix("px") { return Double(text.dropLast(2)) }
        if text.hasSuffix("pt") { return Double(text.dropLast(2)).map { $0 * 4 / 3 } }
        return Double(text)
    }

    static func color(_ text: String) -> RGB? {
        let named: [String: RGB] = [
            "black": RGB(red: 0, green: 0, blue: 0), "white": RGB(red: 1, green: 1, blue: 1),
            "red": RGB(red: 1, green: 0, blue: 0), "blue": RGB(red: 0, green: 0, blue: 1),
            "gray": RGB(red: 128 / 255, green: 128 / 255, blue: 128 / 255),
            "grey": RGB(red: 128 / 255, green: 128 / 255, blue: 128 / 255),
        ]
        if let color = named[text.lowercased()] { return color }
        guard text.hasPrefix("#") else { return nil }
        var hex = String(text.dropFirst())
        if hex.count == 3 { hex = hex.map { "\($0)\($0)" }.joined() }
        guard hex.count == 6, let value = UInt32(hex, radix: 16) else { return nil }
        return RGB(
            red: Double((value >> 16) & 0xFF) / 255, green: Double((value >> 8) & 0xFF) / 255,
            blue: Double(value & 0xFF) / 255)
    }
}
