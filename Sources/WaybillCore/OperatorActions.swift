public import Foundation

/// What an operator does to a refused message (`waybill quarantine`, the web app's quarantine
/// API): route it to a directive of their choice, run it through the rules again, delete it, or
/// look at its pages. Every action runs the one pipeline and is journalled with `actor`
/// (`cli:<user>`, `web:<user>`). WaybillIngest's `QuarantineDesk` is the implementation; the web
/// app takes this protocol, so it does not import the pipeline's layer.
public protocol QuarantineOperations: Sendable {
    /// Every page of a held message, as scanned, to `directive`. Throws `.unknownMessage`,
    /// `.invalidQuarantineAction` (not held), `.stillQuarantined` (refused again), `.messageBusy`.
    func reroute(_ messageID: String, to directive: DirectiveID, actor: String) async throws -> QuarantineActionResult
    /// A held message through the routing rules again. Throws as `reroute`.
    func release(_ messageID: String, actor: String) async throws -> QuarantineActionResult
    /// Removes a held message's original for good; the journal keeps its history.
    func delete(_ messageID: String, actor: String) async throws
    /// Page `page` (0-based) of the message's scans, in order, as a PNG. PDF pages are rendered
    /// at `dpi`; images come as scanned. Throws `.pageNotFound` past the last page.
    func pagePNG(_ messageID: String, page: Int, dpi: Int) async throws -> Data
    /// How many pages the message's scans have (0 when its original is no longer kept).
    func pageCount(_ messageID: String) async throws -> Int
}

/// What an operator does to the outbox (`waybill queue`, the web app's queue API).
public protocol DeliveryQueueOperations: Sendable {
    /// Queued again, due now, its give-up clock restarted; the running delivery queue is woken.
    /// Throws `.unknownDelivery`, or `.invalidQueueAction` unless it was queued or dead.
    func retry(_ id: Int64, actor: String) async throws -> DeliveryRecord
    /// Given up for good (queued or dead rows only); the document leaves the outbox with the
    /// last row that needed it.
    func purge(_ id: Int64, actor: String) async throws -> DeliveryRecord
}

/// How a reroute or release ended when the message was delivered.
public struct QuarantineActionResult: Sendable, Hashable {
    public var jobs: Int
    /// Files written to folders at once.
    public var files: [String]
    /// Deliveries left to the delivery queue (mail, webhooks).
    public var queued: Int

    public init(jobs: Int, files: [String], queued: Int) {
        self.jobs = jobs
        self.files = files
        self.queued = queued
    }
}

extension WaybillError.Code {
    /// Another process is routing the message right now.
    public static let messageBusy = WaybillError.Code("message-busy")
    public static let unknownMessage = WaybillError.Code("unknown-message")
    public static let invalidQuarantineAction = WaybillError.Code("invalid-quarantine-action")
    public static let stillQuarantined = WaybillError.Code("still-quarantined")
    public static let pageNotFound = WaybillError.Code("page-not-found")
    public static let unknownDelivery = WaybillError.Code("unknown-delivery")
    public static let invalidQueueAction = WaybillError.Code("invalid-queue-action")
}
