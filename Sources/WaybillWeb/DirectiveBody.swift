import Foundation
import WaybillCore

/// A field of a PATCH body: absent (keep the stored value), `null` (clear it) or a value.
enum FieldUpdate<Value: Sendable>: Sendable {
    case keep
    case clear
    case set(Value)

    var value: Value? {
        if case .set(let value) = self { value } else { nil }
    }
}

/// The body of `POST /api/directives` and `PATCH /api/directives/{id}`: the keys of the
/// directive JSON that a person chooses. Unknown keys are refused, so a misspelt
/// `destination` is a 400 rather than a directive without the intended change.
struct DirectiveBody: Decodable, Sendable {
    var title: String?
    var owner: String?
    var visibility: String?
    var destinations: [String]?
    /// A date (`2027-03-31`, valid through that day), an ISO 8601 time, or a duration (`30d`).
    var expires: FieldUpdate<String> = .keep
    /// A duration (`90d`) or a number of seconds.
    var idleExpiry: FieldUpdate<Int> = .keep
    var maxUses: FieldUpdate<Int> = .keep
    var deliveryConfirmation: Bool?
    var outputFormat: String?
    var fileNamePattern: String?
    var notes: String?

    enum Key: String, CodingKey, CaseIterable {
        case title, owner, visibility, destinations, expires
        case idleExpiry = "idle_expiry"
        case idleExpirySeconds = "idle_expiry_seconds"
        case maxUses = "max_uses"
        case deliveryConfirmation = "delivery_confirmation"
        case outputFormat = "output_format"
        case fileNamePattern = "file_name_pattern"
        case notes
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// An empty body: every field kept (the web app's forms fill it in).
    init() {}

    init(from decoder: any Decoder) throws {
        let names = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        let known = Set(Key.allCases.map(\.rawValue))
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw APIError.badRequest(
                "unknown key '\(unknown)'; known keys: \(Key.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let container = try decoder.container(keyedBy: Key.self)
        title = try container.decodeIfPresent(String.self, forKey: .title)
        owner = try container.decodeIfPresent(String.self, forKey: .owner)
        visibility = try container.decodeIfPresent(String.self, forKey: .visibility)
        destinations = try container.decodeIfPresent([String].self, forKey: .destinations)
        expires = try Self.update(container, .expires)
        maxUses = try Self.update(container, .maxUses)
        deliveryConfirmation = try container.decodeIfPresent(Bool.self, forKey: .deliveryConfirmation)
        outputFormat = try container.decodeIfPresent(String.self, forKey: .outputFormat)
        fileNamePattern = try container.decodeIfPresent(String.self, forKey: .fileNamePattern)
        notes = try container.decodeIfPresent(String.self, forKey: .notes)
        // `idle_expiry` takes "90d" or seconds; `idle_expiry_seconds` (the response's key) seconds.
        if container.contains(.idleExpirySeconds) {
            idleExpiry = try Self.update(container, .idleExpirySeconds)
        } else if container.contains(.idleExpiry) {
            if try container.decodeNil(forKey: .idleExpiry) {
                idleExpiry = .clear
            } else if let seconds = try? container.decode(Int.self, forKey: .idleExpiry) {
                idleExpiry = .set(seconds)
            } else {
                let text = try container.decode(String.self, forKey: .idleExpiry)
                guard let seconds = TimeSpec.parseDuration(text) else {
                    throw WaybillError(.invalidExpiry, "cannot read idle expiry '\(text)': use a duration such as 90d")
                }
                idleExpiry = .set(seconds)
            }
        }
    }

    static func update<T: Decodable & Sendable>(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> FieldUpdate<T> {
        guard container.contains(key) else { return .keep }
        if try container.decodeNil(forKey: key) { return .clear }
        return .set(try container.decode(T.self, forKey: key))
    }

    func parsedVisibility() throws(WaybillError) -> Visibility? {
        try visibility.map { text throws(WaybillError) in
            guard let value = Visibility(rawValue: text) else {
                throw WaybillError(.invalidDirective, "visibility must be private, shared or public, not '\(text)'")
            }
            return value
        }
    }

    func parsedOutputFormat() throws(WaybillError) -> OutputFormat? {
        try outputFormat.map { text throws(WaybillError) in
            guard let value = OutputFormat(rawValue: text) else {
                throw WaybillError(.invalidDirective, "output_format must be pdf or original, not '\(text)'")
            }
            return value
        }
    }

    func parsedExpiry(now: Date) throws(WaybillError) -> FieldUpdate<Date> {
        switch expires {
        case .keep: return .keep
        case .clear: return .clear
        case .set(let text):
            guard let date = TimeSpec.parseExpiry(text, now: now) else {
                throw WaybillError(
                    .invalidExpiry, "cannot read expiry '\(text)': use a date (2027-03-31), an ISO 8601 time or a duration (30d)")
            }
            return .set(date)
        }
    }

    /// Applies the body's fields on top of `draft`, except owner and expiry (the caller decides those).
    func apply(to draft: inout DirectiveDraft) throws(WaybillError) {
        if let title { draft.title = title }
        if let destinations { draft.destinations = destinations }
        if let visibility = try parsedVisibility() { draft.visibility = visibility }
        switch idleExpiry {
        case .keep: break
        case .clear: draft.idleExpiry = nil
        case .set(let seconds): draft.idleExpiry = seconds
        }
        switch maxUses {
        case .keep: break
        case .clear: draft.maxUses = nil
        case .set(let uses): draft.maxUses = uses
        }
        if let deliveryConfirmation { draft.options.deliveryConfirmation = deliveryConfirmation }
        if let format = try parsedOutputFormat() { draft.options.outputFormat = format }
        if let fileNamePattern { draft.options.fileNamePattern = fileNamePattern }
        if let notes { draft.options.notes = notes }
    }
}
