import CPango
import CRsvg
import Foundation
import Mustache
import WaybillCore

/// Lays out and draws the placeholder text of a compiled template with Pango, following SVG's
/// text rules for what `CompiledTemplate` admits: the baseline at `y`, `tspan` positions
/// (absolute `x`/`y` start a new text chunk, `dx`/`dy` shift), `text-anchor` per chunk, and
/// white space collapsed unless `xml:space="preserve"`.
///
/// One per cairo context (`init(cr:)`: it owns a Pango context bound to it), or one per
/// direct PDF writer (`init(fontMap:)`: laid out only, drawn by `DirectSheetWriter`); the Pango
/// context is freed in `deinit`.
final class TextDrawing {
    private let cr: OpaquePointer?
    private let context: OpaquePointer

    convenience init(cr: OpaquePointer) {
        self.init(context: pango_cairo_create_context(cr), cr: cr)
    }

    /// Layout only, in the font map's fonts (the writer embeds them itself).
    convenience init(fontMap: UnsafeMutablePointer<PangoFontMap>) {
        self.init(context: pango_font_map_create_context(fontMap), cr: nil)
    }

    private init(context: OpaquePointer, cr: OpaquePointer?) {
        self.cr = cr
        self.context = context
        // Vector output: no hinting, unrounded positions, as librsvg sets them.
        let options = cairo_font_options_create()
        cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE)
        cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF)
        cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY)
        pango_cairo_context_set_font_options(context, options)
        cairo_font_options_destroy(options)
        pango_context_set_round_glyph_positions(context, 0)
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(context)) }

    /// One Pango layout (one line, one style) and where its top-left corner goes, in the text
    /// element's coordinates. Owns the layout.
    final class Placed {
        let layout: OpaquePointer
        fileprivate(set) var x: Double
        let y: Double
        let style: TextStyle

        fileprivate init(layout: OpaquePointer, x: Double, y: Double, style: TextStyle) {
            self.layout = layout
            self.x = x
            self.y = y
            self.style = style
        }

        deinit { g_object_unref(UnsafeMutableRawPointer(layout)) }
    }

    /// Draws through the cairo context this was made with.
    func draw(_ text: CompiledTemplate.TextElement, values: [String: Any], viewport: Affine, template: String)
        throws(WaybillError)
    {
        guard let cr else { return }
        cairo_save(cr)
        defer { cairo_restore(cr) }
        var matrix = cairo_matrix_t()
        let transform = viewport.concatenating(text.transform)
        cairo_matrix_init(&matrix, transform.a, transform.b, transform.c, transform.d, transform.e, transform.f)
        cairo_transform(cr, &matrix)
        pango_cairo_update_context(cr, context)
        for run in try place(text, values: values, template: template) {
            guard let fill = run.style.fill else { continue }
            cairo_set_source_rgba(cr, fill.red, fill.green, fill.blue, run.style.fillOpacity)
            cairo_move_to(cr, run.x, run.y)
            pango_cairo_show_layout(cr, run.layout)
        }
    }

    /// Lays the element out: each run's layout with its top-left corner (anchors applied).
    func place(_ text: CompiledTemplate.TextElement, values: [String: Any], template: String) throws(WaybillError) -> [Placed] {
        let runs: [TextFragment.Run]
        do {
            runs = try TextFragment.parse(text.content.render(values))
        } catch {
            throw WaybillError(.templateMalformed, "template \(template): a text element renders to malformed XML: \(error)")
        }
        var placed: [[Placed]] = [[]]
        var pen = (x: text.x, y: text.y)
        let strings = Self.collapseWhiteSpace(runs.map(\.text), preserve: text.style.preserveSpace)
        for (run, string) in zip(runs, strings) {
            var style = text.style
            guard style.apply(attributes: run.attributes) else {
                throw WaybillError(.templateMalformed, "template \(template): unsupported attributes on a tspan")
            }
            let position = { (name: String) in CompiledTemplate.number(run.attributes, name, default: .nan) ?? .nan }
            if !position("x").isNaN {
                pen.x = position("x")
                if !(placed.last?.isEmpty ?? true) { placed.append([]) }
            }
            if !position("y").isNaN {
                pen.y = position("y")
                if !(placed.last?.isEmpty ?? true) { placed.append([]) }
            }
            if !position("dx").isNaN { pen.x += position("dx") }
            if !position("dy").isNaN { pen.y += position("dy") }
            guard !string.isEmpty else { continue }
            let layout = makeLayout(string, style: style)
            var width: Int32 = 0
            var height: Int32 = 0
            pango_layout_get_size(layout, &width, &height)
            let baseline = Double(pango_layout_get_baseline(layout)) / Double(PANGO_SCALE)
            // From the baseline origin to the layout's top-left corner.
            placed[placed.count - 1].append(Placed(layout: layout, x: pen.x, y: pen.y - baseline, style: style))
            pen.x += Double(width) / Double(PANGO_SCALE)
        }
        var result: [Placed] = []
        for chunk in placed where !chunk.isEmpty {
            let start = chunk[0].x
            let last = chunk[chunk.count - 1]
            var width: Int32 = 0
            var height: Int32 = 0
            pango_layout_get_size(last.layout, &width, &height)
            let end = last.x + Double(width) / Double(PANGO_SCALE)
            let shift: Double
            switch chunk[0].style.anchor {
            case .start: shift = 0
            case .middle: shift = -(end - start) / 2
            case .end: shift = -(end - start)
            }
            for run in chunk {
                run.x += shift
                result.append(run)
            }
        }
        return result
    }

    private func makeLayout(_ string: String, style: TextStyle) -> OpaquePointer {
        let layout = pango_layout_new(context)!
        pango_layout_set_text(layout, string, -1)
        let description = pango_font_description_new()
        pango_font_description_set_family(description, style.fontFamily)
        pango_font_description_set_absolute_size(description, style.fontSize * Double(PANGO_SCALE))
        pango_font_description_set_weight(description, PangoWeight(rawValue: UInt32(style.fontWeight)))
        pango_font_description_set_style(description, style.italic ? PANGO_STYLE_ITALIC : PANGO_STYLE_NORMAL)
        pango_font_description_set_stretch(description, PangoStretch(rawValue: UInt32(style.stretch.rawValue)))
        pango_layout_set_font_description(layout, description)
        pango_font_description_free(description)
        // No ligatures: a sheet's text is names, addresses and ids, read letter by letter (an
        // "fi" in a mailbox name should look like f and i), and with one glyph per character the
        // direct writer can draw every line of it (`DirectSheetWriter`).
        let attributes = pango_attr_list_new()
        pango_attr_list_insert(attributes, pango_attr_font_features_new("liga=0,clig=0"))
        if style.letterSpacing != 0 {
            pango_attr_list_insert(attributes, pango_attr_letter_spacing_new(Int32(style.letterSpacing * Double(PANGO_SCALE))))
        }
        pango_layout_set_attributes(layout, attributes)
        pango_attr_list_unref(attributes)
        return layout
    }

    /// SVG 1.1 §10.15 for `xml:space="default"`: drop newlines, tabs become spaces, runs of spaces
    /// collapse to one (across tspans), leading and trailing spaces of the element go.
    static func collapseWhiteSpace(_ strings: [String], preserve: Bool) -> [String] {
        if preserve {
            return strings.map { String($0.map { $0 == "\n" || $0 == "\t" || $0 == "\r" ? " " : $0 }) }
        }
        var lastWasSpace = true
        var result = strings.map { string -> String in
            var out = ""
            for character in string where character != "\n" && character != "\r" {
                let isSpace = character == " " || character == "\t"
                if isSpace {
                    if !lastWasSpace { out.append(" ") }
                } else {
                    out.append(character)
                }
                lastWasSpace = isSpace
            }
            return out
        }
        if let last = result.lastIndex(where: { !$0.isEmpty }), result[last].hasSuffix(" ") {
            result[last].removeLast()
        }
        return result
    }
}
