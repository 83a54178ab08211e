import CRsvg
import Foundation
import Mustache
public import WaybillCore

public enum Paper: String, Sendable, CaseIterable {
    case letter
    case a4
}

/// A routing-sheet template: SVG with Mustache placeholders. The elements with ids
/// `waybill-qr` and `waybill-code128` mark where the renderer draws the two codes.
public struct SheetTemplate: Sendable {
    public static let qrElementID = "waybill-qr"
    public static let code128ElementID = "waybill-code128"

    public let name: String
    public let path: String
    let mustache: MustacheTemplate
    /// The static/dynamic split, when the template admits it (see `CompiledTemplate`).
    let compiled: CompiledTemplate?

    /// Loads and parses a template file. Missing files and Mustache syntax errors name the file.
    /// `split: false` keeps every element with librsvg (the reference the fast path is tested against).
    public init(path: String, split: Bool = true) throws(WaybillError) {
        self.path = path
        self.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WaybillError(.templateNotFound, "cannot read template \(path): \(error.localizedDescription)")
        }
        for id in [Self.qrElementID, Self.code128ElementID] where !text.contains("id=\"\(id)\"") {
            throw WaybillError(.templateMalformed, "template \(path) has no element with id=\"\(id)\" to mark where the code goes")
        }
        do {
            mustache = try MustacheTemplate(string: text)
        } catch {
            throw WaybillError(.templateMalformed, "template \(path) is not a valid Mustache template: \(error)")
        }
        // The template must be well-formed SVG before its placeholders are filled: checked here,
        // strictly, so a broken file is named when it is loaded, not when a sheet is drawn.
        var error: UnsafeMutablePointer<GError>?
        let bytes = Array(text.utf8)
        let handle = bytes.withUnsafeBufferPointer { rsvg_handle_new_from_data($0.baseAddress, gsize($0.count), &error) }
        guard let handle else {
            throw WaybillError(.templateMalformed, "template \(path) is not valid SVG: \(SheetRenderer.take(error))")
        }
        g_object_unref(UnsafeMutableRawPointer(handle))
        compiled = split ? CompiledTemplate.compile(text) : nil
    }

    func render(_ content: SheetContent) -> String {
        mustache.render(content.templateValues)
    }
}

/// Finds templates: `--templates DIR`, then `WAYBILL_TEMPLATES`, then `./Templates`, then the
/// install location `make install` fills, then the `share/waybill/Templates` beside the binary.
public struct TemplateLocator: Sendable {
    public let searchPath: [String]

    public init(explicitDirectory: String?, environment: [String: String], executablePath: String?) {
        var path: [String] = []
        if let explicitDirectory { path.append(explicitDirectory) }
        if let fromEnvironment = environment["WAYBILL_TEMPLATES"], !fromEnvironment.isEmpty { path.append(fromEnvironment) }
        path.append(FileManager.default.currentDirectoryPath + "/Templates")
        path.append(Self.installDirectory)
        if let executablePath {
            let bin = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
            path.append(bin.deletingLastPathComponent().appendingPathComponent("share/waybill/Templates").path)
        }
        searchPath = path
    }

    public static let installDirectory = "/usr/local/share/waybill/Templates"

    /// `standard` + `a4` → the first `standard-a4.svg` on the search path.
    public func locate(name: String, paper: Paper) throws(WaybillError) -> SheetTemplate {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
            throw WaybillError(.templateNotFound, "'\(name)' is not a template name")
        }
        let file = "\(name)-\(paper.rawValue).svg"
        for directory in searchPath {
            let candidate = (directory as NSString).appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: candidate) {
                return try SheetTemplate(path: candidate)
            }
        }
        throw WaybillError(
            .templateNotFound, "template \(file) not found; looked in: \(searchPath.joined(separator: ", "))")
    }
}
