public import Foundation

/// A directive's file-name pattern filled in: `{date}` (2026-11-29), `{time}` (213015),
/// `{directive}`, `{message}`, `{title}`, `{n}` (the job's number). The result is one safe file
/// name: no separators, control characters or leading dots, at most 200 bytes, with `.ext`.
public enum FileNamePattern {
    public static func render(
        _ pattern: String, date: Date, directive: DirectiveID?, messageID: String, title: String, job: Int, extension ext: String
    ) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
        let time = String(format: "%02d%02d%02d", parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
        var name = pattern
        for (token, value) in [
            ("{date}", day), ("{time}", time), ("{directive}", directive?.rawValue ?? "none"), ("{message}", messageID),
            ("{title}", title), ("{n}", String(job)),
        ] {
            name = name.replacingOccurrences(of: token, with: value)
        }
        return safe(name, extension: ext)
    }

    public static func safe(_ name: String, extension ext: String) -> String {
        var cleaned = String(
            String.UnicodeScalarView(
                name.unicodeScalars.map { scalar -> Unicode.Scalar in
                    switch scalar {
                    case "/", "\\", ":", "*", "?", "\"", "<", ">", "|": "_"
                    default: scalar.properties.generalCategory == .control ? "_" : scalar
                    }
                }))
        cleaned = String(cleaned.drop { $0 == "." || $0 == " " })
        while cleaned.utf8.count > 200 { cleaned.removeLast() }
        if cleaned.isEmpty { cleaned = "document" }
        return ext.isEmpty || cleaned.lowercased().hasSuffix("." + ext) ? cleaned : cleaned + "." + ext
    }
}
