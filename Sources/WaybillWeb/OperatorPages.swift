import Foundation
import Hummingbird
import NIOCore
import WaybillCore

/// The pages over the operator API: each user's activity; for administrators the quarantine
/// (pages shown as images, reroute, release, delete), the delivery queue (retry, purge) and the
/// journal search. The same routes and desks as `/api`, with sessions and CSRF-checked forms.
extension PageRoutes {
    func addOperatorPages(to pages: RouterGroup<WebRequestContext>) {
        pages.get("activity", use: activity)
        pages.get("activity/:id", use: activityMessage)
        pages.get("activity/:id/pages/:page", use: activityPage)
        pages.get("admin/quarantine", use: quarantineList)
        pages.get("admin/quarantine/:id", use: quarantineEntry)
        pages.get("admin/quarantine/:id/pages/:page", use: quarantinePage)
        pages.post("admin/quarantine/:id/reroute", use: quarantineReroute)
        pages.post("admin/quarantine/:id/release", use: quarantineRelease)
        pages.post("admin/quarantine/:id/delete", use: quarantineDelete)
        pages.get("admin/queue", use: queue)
        pages.post("admin/queue/:id/retry", use: queueRetry)
        pages.post("admin/queue/:id/purge", use: queuePurge)
        pages.get("admin/journal", use: journal)
    }

    var activityRoutes: ActivityRoutes { ActivityRoutes(configuration: configuration) }
    var quarantineRoutes: QuarantineRoutes { QuarantineRoutes(configuration: configuration) }
    var queueRoutes: QueueRoutes { QueueRoutes(configuration: configuration) }

    // MARK: Activity

    /// The messages that used the user's directives (an admin: `?user=` for someone else's).
    @Sendable func activity(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        var owner = user.name
        if let asked = request.uri.queryParameters.get("user"), !asked.isEmpty, user.isAdmin { owner = asked }
        let records = try await configuration.store.messages(touchingDirectivesOf: owner, limit: 200)
        var directives: [DirectiveID: Directive?] = [:]
        var rows: [[String: Any]] = []
        for record in records {
            let message = try await activityRoutes.json(record, only: owner, journal: false, directives: &directives)
            rows.append([
                "id": message.id, "received": Self.dateTime(record.receivedAt), "sender": message.sender, "state": message.state,
                "outcome": message.outcome ?? "",
                "directives": message.jobs.map { "\($0.title ?? "?") (\($0.directive))" },
            ])
        }
        return render(
            "activity", title: "Activity", context: context,
            values: ["messages": rows, "all": owner != user.name, "navActivity": true])
    }

    @Sendable func activityMessage(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let id = try context.parameters.require("id")
        guard let record = try await configuration.store.message(id) else {
            throw WaybillError(.unknownMessage, "no message \(id)")
        }
        var directives: [DirectiveID: Directive?] = [:]
        let message = try await activityRoutes.json(
            record, only: user.isAdmin ? nil : user.name, journal: true, directives: &directives)
        guard user.isAdmin || !message.jobs.isEmpty || record.sender.lowercased() == user.name.lowercased() else {
            throw APIError.forbidden("message \(id) routed nothing to a directive of yours")
        }
        let quarantined = user.isAdmin ? try await configuration.store.quarantineEntry(id) : nil
        var pages: [[String: Any]] = []
        var pagesNote = ""
        if try await maySeeScans(record, user: user) {
            let count = (try? await configuration.quarantine?.pageCount(id)) ?? 0
            pages = (0..<min(count, 50)).map { ["number": $0 + 1, "url": "/activity/\(id)/pages/\($0 + 1).png"] }
            pagesNote = count == 0 ? "The scan is no longer kept." : ""
        } else {
            pagesNote = "This scan also went to other people's directives: only an administrator sees its pages."
        }
        return render(
            "message", title: "Message \(id)", context: context,
            values: [
                "m": [
                    "id": message.id, "received": Self.dateTime(record.receivedAt), "sender": message.sender, "state": message.state,
                    "outcome": message.outcome ?? "",
                ],
                "jobs": message.jobs.map { ["directive": $0.directive, "title": $0.title ?? "?"] },
                "deliveries": message.deliveries.map(Self.deliveryRow),
                "journal": (message.journal ?? []).map(Self.journalRow),
                "quarantined": quarantined != nil, "pages": pages, "pagesNote": pagesNote, "navActivity": true,
            ])
    }

    /// A page of a message's kept scan: for admins, and for a user whose directives received
    /// every job of it (a batch with other people's sheets is theirs too).
    @Sendable func activityPage(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let id = try context.parameters.require("id")
        guard let record = try await configuration.store.message(id) else {
            throw WaybillError(.unknownMessage, "no message \(id)")
        }
        guard try await maySeeScans(record, user: user) else {
            throw APIError.forbidden("only an administrator sees the pages of message \(id)")
        }
        let text = try context.parameters.require("page")
        guard text.hasSuffix(".png"), let number = Int(text.dropLast(4)), number >= 1 else {
            throw APIError(.notFound, code: "page-not-found", "pages are named 1.png, 2.png, …")
        }
        let png = try await quarantineRoutes.operations().pagePNG(id, page: number - 1, dpi: 100)
        return directives.file(png, type: "image/png", name: "\(id)-\(number).png")
    }

    func maySeeScans(_ record: MessageRecord, user: User) async throws -> Bool {
        if user.isAdmin { return true }
        let jobs = try await configuration.store.jobs(messageID: record.id)
        // A scan that went nowhere (refused) is its sender's to look at.
        guard !jobs.isEmpty else { return record.sender.lowercased() == user.name.lowercased() }
        for job in jobs {
            guard let directive = try await configuration.store.directive(job.directive),
                directive.owner.lowercased() == user.name.lowercased()
            else { return false }
        }
        return true
    }

    // MARK: Quarantine

    @Sendable func quarantineList(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let all = request.uri.queryParameters.get("all") == "true"
        let entries = try await configuration.store.quarantineEntries().filter { all || $0.state == .held }
        return render(
            "quarantine", title: "Quarantine", context: context,
            values: ["entries": entries.map(Self.entryRow), "all": all, "navAdmin": true], notice: Self.notice(request))
    }

    @Sendable func quarantineEntry(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let entry = try await quarantineRoutes.entry(context)
        let count = try await quarantineRoutes.operations().pageCount(entry.messageID)
        let now = configuration.clock()
        let choices = try await configuration.store.allDirectives().filter { $0.status(at: now).isActive }
            .map { ["id": $0.id.rawValue, "title": $0.title, "display": $0.id.display] }
        var values = Self.entryRow(entry)
        values["recipients"] = entry.recipients.joined(separator: ", ")
        values["subject"] = entry.subject
        let journal = try await configuration.store.journal(messageID: entry.messageID).map(ActivityJSON.Journal.init)
        return render(
            "quarantine-entry", title: "Quarantined message", context: context,
            values: [
                "e": values, "held": entry.state == .held, "choices": choices,
                "pages": (0..<min(count, 50)).map { ["number": $0 + 1, "url": "/admin/quarantine/\(entry.messageID)/pages/\($0 + 1).png"] },
                "morePages": count > 50 ? "\(count - 50) more pages are not shown." : "",
                "journal": journal.map(Self.journalRow), "navAdmin": true,
            ], notice: Self.notice(request))
    }

    /// A page of the scan as PNG: 100 dpi, enough to read on a screen.
    @Sendable func quarantinePage(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let text = try context.parameters.require("page")
        guard text.hasSuffix(".png"), let number = Int(text.dropLast(4)), number >= 1 else {
            throw APIError(.notFound, code: "page-not-found", "pages are named 1.png, 2.png, …")
        }
        let entry = try await quarantineRoutes.entry(context)
        let png = try await quarantineRoutes.operations().pagePNG(entry.messageID, page: number - 1, dpi: 100)
        return directives.file(png, type: "image/png", name: "\(entry.messageID)-\(number).png")
    }

    @Sendable func quarantineReroute(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireAdmin(context)
        let form = try await postedForm(request, context)
        let entry = try await quarantineRoutes.entry(context)
        guard let id = DirectiveID(form["directive"] ?? "") else {
            throw WaybillError(.invalidDirectiveID, "choose a directive to deliver to")
        }
        _ = try await quarantineRoutes.operations().reroute(entry.messageID, to: id, actor: QuarantineRoutes.actor(user))
        return Self.redirect("/admin/quarantine/\(entry.messageID)?notice=rerouted")
    }

    @Sendable func quarantineRelease(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireAdmin(context)
        _ = try await postedForm(request, context)
        let entry = try await quarantineRoutes.entry(context)
        _ = try await quarantineRoutes.operations().release(entry.messageID, actor: QuarantineRoutes.actor(user))
        return Self.redirect("/admin/quarantine/\(entry.messageID)?notice=released")
    }

    @Sendable func quarantineDelete(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireAdmin(context)
        let form = try await postedForm(request, context)
        let entry = try await quarantineRoutes.entry(context)
        guard form["confirm"] == "yes" else {
            throw APIError(.unprocessableContent, code: "confirmation-required", "tick the box to confirm the deletion")
        }
        try await quarantineRoutes.operations().delete(entry.messageID, actor: QuarantineRoutes.actor(user))
        return Self.redirect("/admin/quarantine?notice=deleted")
    }

    // MARK: Queue and journal

    @Sendable func queue(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let choice = request.uri.queryParameters.get("state") ?? "waiting"
        let options: [(value: String, label: String, states: Set<DeliveryState>)] = [
            ("waiting", "Waiting and dead", [.queued, .sending, .dead]), ("queued", "Queued", [.queued]),
            ("sending", "Sending", [.sending]), ("dead", "Dead letters", [.dead]), ("delivered", "Delivered", [.delivered]),
            ("purged", "Purged", [.purged]), ("all", "Everything", Set(DeliveryState.allCases)),
        ]
        guard let selected = options.first(where: { $0.value == choice }) else {
            throw APIError.badRequest("unknown state '\(choice)'")
        }
        let rows = try await configuration.store.deliveries(states: selected.states, limit: 500)
        return render(
            "queue", title: "Delivery queue", context: context,
            values: [
                "states": options.map { ["value": $0.value, "label": $0.label, "selected": $0.value == choice] },
                "rows": rows.map { row -> [String: Any] in
                    var values = Self.deliveryRow(ActivityJSON.Delivery(row))
                    values["actionable"] = row.state == .queued || row.state == .dead
                    return values
                },
                "navAdmin": true,
            ], notice: Self.notice(request))
    }

    @Sendable func queueRetry(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireAdmin(context)
        _ = try await postedForm(request, context)
        let row = try await queueRoutes.row(context)
        _ = try await queueRoutes.operations().retry(row.id, actor: QuarantineRoutes.actor(user))
        return Self.redirect("/admin/queue?notice=retried")
    }

    @Sendable func queuePurge(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireAdmin(context)
        _ = try await postedForm(request, context)
        let row = try await queueRoutes.row(context)
        _ = try await queueRoutes.operations().purge(row.id, actor: QuarantineRoutes.actor(user))
        return Self.redirect("/admin/queue?notice=purged")
    }

    /// The journal by message, directive, directive owner and day.
    @Sendable func journal(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let parameters = request.uri.queryParameters
        func value(_ name: String) -> String { parameters.get(name)?.trimmingCharacters(in: .whitespaces) ?? "" }
        var query = JournalQuery(limit: 500)
        query.messageID = value("message").isEmpty ? nil : value("message")
        if !value("directive").isEmpty {
            guard let id = DirectiveID(value("directive")) else {
                throw WaybillError(.invalidDirectiveID, "'\(value("directive"))' is not a directive id")
            }
            query.directive = id
        }
        query.owner = value("user").isEmpty ? nil : value("user")
        query.since = try ActivityRoutes.date(value("since"), "since")
        // Until a day means through its end.
        query.until = try ActivityRoutes.date(value("until"), "until").map { value("until").count == 10 ? $0.addingTimeInterval(86400) : $0 }
        let searched = !parameters.isEmpty
        let lines = searched ? try await configuration.store.journal(matching: query) : []
        return render(
            "journal", title: "Journal", context: context,
            values: [
                "q": ["message": value("message"), "directive": value("directive"), "user": value("user"), "since": value("since"),
                      "until": value("until")],
                "entries": lines.map { Self.journalRow(ActivityJSON.Journal($0)) }, "searched": searched, "navAdmin": true,
            ])
    }

    // MARK: Rows

    static func entryRow(_ entry: QuarantineEntry) -> [String: Any] {
        [
            "id": entry.messageID, "at": dateTime(entry.at), "sender": entry.sender, "reason": entry.reason, "detail": entry.detail,
            "state": entry.state.rawValue,
        ]
    }

    static func deliveryRow(_ row: ActivityJSON.Delivery) -> [String: Any] {
        [
            "id": row.id, "message": row.message, "destination": row.destination, "state": row.state, "attempts": row.attempts,
            "next": row.next_attempt.map { "next \($0)" } ?? row.delivered.map { "delivered \($0)" } ?? "",
            "error": row.last_error ?? "", "kind": row.kind,
        ]
    }

    static func journalRow(_ line: ActivityJSON.Journal) -> [String: Any] {
        ["at": line.at, "message": line.message, "event": line.event, "detail": line.detail, "actor": line.actor]
    }
}
