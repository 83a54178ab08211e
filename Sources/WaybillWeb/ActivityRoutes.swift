import Foundation
import Hummingbird
import WaybillCore

/// `/api/journal` (admins) and `/api/messages` ("my activity", everyone signed in).
///
/// A user's activity is the messages with a job on a directive they own, with those jobs and
/// their deliveries; an admin may look at anyone's (`?user=`) and at every job of one message.
/// The journal's `user` filter means the same thing (messages of that user's directives);
/// `actor` filters on who wrote the line.
struct ActivityRoutes: Sendable {
    let configuration: WebConfiguration

    func add(to group: RouterGroup<WebRequestContext>) {
        group.get("journal", use: journal)
        group.get("messages", use: messages)
        group.get("messages/:id", use: message)
    }

    /// `?message=&directive=&user=&actor=&since=&until=&limit=`, newest first.
    @Sendable func journal(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("searches the journal")
        let parameters = request.uri.queryParameters
        var query = JournalQuery(limit: try QueueRoutes.limit(request, default: 100, range: 1...1000))
        query.messageID = parameters.get("message").flatMap { $0.isEmpty ? nil : $0 }
        if let text = parameters.get("directive"), !text.isEmpty {
            guard let id = DirectiveID(text) else { throw APIError.badRequest("'\(text)' is not a directive id") }
            query.directive = id
        }
        query.owner = parameters.get("user").flatMap { $0.isEmpty ? nil : $0 }
        query.actor = parameters.get("actor").flatMap { $0.isEmpty ? nil : $0 }
        query.since = try Self.date(parameters.get("since"), "since")
        query.until = try Self.date(parameters.get("until"), "until")
        let lines = try await configuration.store.journal(matching: query)
        return try JSONResponse.make(lines.map(ActivityJSON.Journal.init))
    }

    /// `?user=` (admins only, for someone else), `?limit=`; newest first.
    @Sendable func messages(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        var owner = user.name
        if let asked = request.uri.queryParameters.get("user"), !asked.isEmpty, asked.lowercased() != user.name.lowercased() {
            guard user.isAdmin else { throw APIError.forbidden("only an admin sees another user's activity") }
            owner = asked
        }
        let limit = try QueueRoutes.limit(request, default: 100, range: 1...1000)
        let records = try await configuration.store.messages(touchingDirectivesOf: owner, limit: limit)
        var directives: [DirectiveID: Directive?] = [:]
        var out: [ActivityJSON.Message] = []
        for record in records {
            out.append(try await json(record, only: owner, journal: false, directives: &directives))
        }
        return try JSONResponse.make(out)
    }

    /// One message of the user's (with its journal); 403 if none of its jobs is theirs, unless
    /// they are an admin, who sees every job.
    @Sendable func message(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try context.parameters.require("id")
        guard let record = try await configuration.store.message(id) else {
            throw WaybillError(.unknownMessage, "no message \(id)")
        }
        var directives: [DirectiveID: Directive?] = [:]
        if !user.isAdmin {
            let mine = try await json(record, only: user.name, journal: false, directives: &directives)
            guard !mine.jobs.isEmpty || record.sender.lowercased() == user.name.lowercased() else {
                throw APIError.forbidden("message \(id) routed nothing to a directive of yours")
            }
        }
        return try JSONResponse.make(try await json(record, only: user.isAdmin ? nil : user.name, journal: true, directives: &directives))
    }

    /// The message with its jobs (only those on `only`'s directives, when given) and their
    /// deliveries; notices and relays (job 0) only when every job is shown.
    func json(
        _ record: MessageRecord, only owner: String?, journal: Bool, directives: inout [DirectiveID: Directive?]
    ) async throws -> ActivityJSON.Message {
        var jobs: [ActivityJSON.Job] = []
        for job in try await configuration.store.jobs(messageID: record.id) {
            if directives[job.directive] == nil { directives[job.directive] = .some(try await configuration.store.directive(job.directive)) }
            let directive = directives[job.directive] ?? nil
            if let owner, directive?.owner.lowercased() != owner.lowercased() { continue }
            jobs.append(
                ActivityJSON.Job(
                    number: job.number, directive: job.directive.display, title: directive?.title, owner: directive?.owner,
                    accepted: HumanDate.formatISO(job.acceptedAt)))
        }
        let shown = Set(jobs.map(\.number))
        let deliveries = try await configuration.store.deliveries(messageID: record.id)
            .filter { owner == nil || shown.contains($0.job) }
        return ActivityJSON.Message(
            id: record.id, received: HumanDate.formatISO(record.receivedAt), sender: record.sender, recipients: record.recipients,
            state: record.state.rawValue, outcome: record.outcome, finished: record.finishedAt.map(HumanDate.formatISO),
            jobs: jobs, deliveries: deliveries.map(ActivityJSON.Delivery.init),
            journal: journal ? try await configuration.store.journal(messageID: record.id).map(ActivityJSON.Journal.init) : nil)
    }

    /// ISO 8601 (`2026-11-30T08:00:00Z`) or a day (`2026-11-30`, its start in UTC).
    static func date(_ text: String?, _ name: String) throws -> Date? {
        guard let text, !text.isEmpty else { return nil }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if text.count == 10, let day = try? Date(text + "T00:00:00Z", strategy: .iso8601) { return day }
        throw APIError.badRequest("\(name) must be an ISO 8601 date or time, such as 2026-11-30 or 2026-11-30T08:00:00Z")
    }
}
