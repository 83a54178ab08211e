import Foundation

/// Turns a sender's file name into one that is safe as a path component and in a log line.
enum AttachmentFilename {
    static let maximumBytes = 200

    /// Extensions for the formats a scanner sends, so a nameless part still opens in a viewer.
    private static let extensions = [
        "application/pdf": "pdf", "image/tiff": "tif", "image/jpeg": "jpg", "image/jpg": "jpg",
        "image/pjpeg": "jpg", "image/png": "png",
    ]

    /// `raw` is the decoded name GMime found (Content-Disposition `filename`, else Content-Type `name`).
    static func make(_ raw: String?, index: Int, contentType: String) -> String {
        if let raw, let safe = sanitize(raw) { return safe }
        let base = "attachment-\(index + 1)"
        return extensions[contentType].map { "\(base).\($0)" } ?? base
    }

    /// `nil` when nothing usable is left.
    static func sanitize(_ raw: String) -> String? {
        // Only the last path component: Windows clients send `C:\Scans\scan.pdf`, attackers
        // `../../etc/passwd`. Scalars, not Characters, so a combining mark cannot hide a slash.
        var scalars = String.UnicodeScalarView()
        for scalar in raw.unicodeScalars {
            if scalar == "/" || scalar == "\\" {
                scalars.removeAll()
            } else if !isUnsafe(scalar) {
                scalars.append(scalar)
            }
        }
        var name = Substring(String(scalars).trimmingCharacters(in: .whitespacesAndNewlines))
        // A leading dot hides the file and `..` walks up: drop them all.
        name = name.drop { $0 == "." || $0.isWhitespace }
        let result = truncated(String(name))
        return result.isEmpty ? nil : result
    }

    /// NUL and other controls, line separators, and format characters such as U+202E (which
    /// shows `scan\u{202E}fdp.exe` as `scanexe.pdf`).
    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }

    /// Shortens to `maximumBytes` of UTF-8 on a character boundary, keeping a short extension.
    private static func truncated(_ name: String) -> String {
        guard name.utf8.count > maximumBytes else { return name }
        var stem = Substring(name)
        var suffix = ""
        if let dot = name.lastIndex(of: "."), dot != name.startIndex, name.utf8[dot...].count <= 16 {
            stem = name[..<dot]
            suffix = String(name[dot...])
        }
        let budget = maximumBytes - suffix.utf8.count
        var kept = ""
        var used = 0
        for character in stem {
            let size = character.utf8.count
            if used + size > budget { break }
            kept.append(character)
            used += size
        }
        return kept + suffix
    }
}
