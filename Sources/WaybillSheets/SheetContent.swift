import Foundation
public import WaybillCore

/// Everything printed on one routing sheet, already checked: an active directive and its token.
public struct SheetContent: Sendable {
    public let directive: Directive
    public let token: SheetToken
    /// Where people send their scans, printed in the instructions.
    public let scanAddress: String

    public init(directive: Directive, token: SheetToken, scanAddress: String) {
        self.directive = directive
        self.token = token
        self.scanAddress = scanAddress
    }

    /// The template's placeholders. Lengths are capped here so a template can lay out for the worst case.
    var templateValues: [String: Any] {
        let shown = directive.destinations.prefix(Self.maxDestinationLines)
        let hidden = directive.destinations.count - shown.count
        return [
            "title": Self.clipEnd(directive.title, 48),
            "owner": Self.clip(directive.owner, 60),
            "id": directive.id.rawValue,
            "id_display": directive.id.display,
            "token": token.description,
            "expiry": directive.expiresAt.map { "Valid through \(HumanDate.format($0.addingTimeInterval(-1)))" }
                ?? "No expiry date",
            "uses": directive.maxUses.map { "Up to \($0) uses (\(directive.useCount) used)" } ?? "Unlimited uses",
            "created": "Created \(HumanDate.format(directive.createdAt))",
            "scan_address": Self.clip(scanAddress, 60),
            "destinations": shown.map { ["text": Self.clip($0.label, 70)] },
            "more_destinations": hidden > 0 ? "and \(hidden) more destination\(hidden == 1 ? "" : "s")" : "",
            "notes": Self.clip(directive.options.notes, 80),
        ]
    }

    static let maxDestinationLines = 8

    /// Titles read from the start: cut at the end.
    static func clipEnd(_ text: String, _ limit: Int) -> String {
        text.count > limit ? text.prefix(limit - 1) + "…" : text
    }

    /// Shortens to `limit` characters with an ellipsis in the middle, where long addresses
    /// and paths differ least.
    static func clip(_ text: String, _ limit: Int) -> String {
        guard text.count > limit else { return text }
        let head = (limit - 1) / 2
        let tail = limit - 1 - head
        return text.prefix(head) + "…" + text.suffix(tail)
    }
}
