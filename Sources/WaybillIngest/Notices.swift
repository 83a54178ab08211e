import Crypto
import Foundation
import WaybillCore
import WaybillDelivery
import WaybillStore

/// Mail Waybill writes to people: a delivery confirmation to a directive's owner, and failure
/// notices (a message quarantined, a delivery given up) to the sender and the owner.
///
/// Never backscatter: a notice goes to a sender only when the pipeline recorded that sender as
/// one a notice may reach (`MessageRecord.notify`: a sender in a configured domain or an
/// authenticated one, not the null sender, not automatic mail), never answers a notice (each
/// carries `Auto-Submitted: auto-replied` and `X-Waybill-Notice`, goes out from the null sender
/// `<>`, and notices are never themselves noticed), and a message gets each notice once.
extension Deliverer {
    public struct Notice: Sendable {
        public var kind: String
        public var to: String
        public var subject: String
        public var body: String
    }

    /// Queues notices as outbox rows (kind `notice`); they then go like any delivery.
    func queue(_ notices: [Notice], messageID: String, job: Int = 0, actor: String) async throws {
        guard options.notices, smtp != nil else {
            if !notices.isEmpty {
                try await store.journal(
                    notices.map {
                        JournalEntry(
                            at: now(), messageID: messageID, event: "no-notice",
                            detail: "\($0.kind) notice to \($0.to) not sent: " + (options.notices ? "no smarthost is configured" : "notices are off"),
                            actor: actor)
                    })
            }
            return
        }
        var rows: [NewDelivery] = []
        var seen: Set<String> = []
        for notice in notices where seen.insert(notice.to.lowercased()).inserted {
            let destination = "mailto:" + notice.to
            // One notice of a kind per message and address: a second attempt finds the row and stops.
            if try await store.deliveries(messageID: messageID).contains(where: {
                $0.kind == .notice && $0.job == job && $0.destination.lowercased() == destination.lowercased()
                    && $0.fileName == "\(notice.kind).eml"
            }) {
                continue
            }
            let mail = OutgoingMail(
                from: options.mailFrom, fromName: "Waybill", to: [notice.to], subject: notice.subject, body: notice.body,
                attachments: [], messageID: "waybill.notice.\(notice.kind).\(messageID).\(job).\(Self.shortHash(notice.to))@\(options.hostname)", date: now(),
                extraHeaders: [
                    ("Auto-Submitted", "auto-replied"), ("X-Waybill-Notice", notice.kind), ("X-Waybill-Message", messageID),
                ])
            let outbox = self.outbox
            let name = "notice-\(notice.kind)-\(job)-\(Self.shortHash(notice.to)).eml"
            let kept = try await Pipeline.offPool {
                let temporary = outbox.url.appendingPathComponent(".\(messageID)-\(name).tmp")
                try Pipeline.createDirectory(outbox.url)
                try mail.write(to: temporary)
                return try outbox.keep(temporary, messageID: messageID, as: name)
            }
            rows.append(
                NewDelivery(
                    messageID: messageID, job: job, kind: .notice, destination: destination, document: kept.path,
                    fileName: "\(notice.kind).eml", sha256: try await Pipeline.offPool { try Pipeline.sha256(kept) }))
        }
        _ = try await store.enqueue(rows, at: now(), journal: [])
    }

    static func shortHash(_ text: String) -> String {
        SHA256.hash(data: Data(text.lowercased().utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// A quarantined message: the sender (if a notice may reach them) and the directive's owner
    /// (when the refusal concerns a directive) are told why and what to do.
    func noticeQuarantined(
        messageID: String, reason: String, detail: String, subject: String?, directive: Directive?, actor: String
    ) async throws {
        guard let message = try await store.message(messageID) else { return }
        let (headline, next) = Self.explain(reason, directive: directive, sheetsURL: options.sheetsURL)
        let about = subject.map { "\"\($0)\"" } ?? "your scan"
        let body = """
            Waybill could not deliver \(about), received on \(Self.format(message.receivedAt)).

            \(headline)
            \(detail.isEmpty ? "" : "\nDetails: \(detail)\n")
            What to do next: \(next)

            The scan is kept in quarantine as \(messageID); an administrator can release it
            or route it to another directive (waybill quarantine show \(messageID)).

            -- 
            Waybill, on \(options.hostname). This notice was sent automatically; replies are not read.
            """
        var notices: [Notice] = []
        if let sender = message.notify {
            notices.append(Notice(kind: "quarantined", to: sender, subject: "Not delivered: \(subject ?? "your scan") (\(reason))", body: body))
        }
        if let owner = directive?.owner {
            notices.append(
                Notice(kind: "quarantined", to: owner, subject: "Not delivered with your routing sheet \"\(directive!.title)\" (\(reason))", body: body))
        }
        try await queue(notices, messageID: messageID, actor: actor)
    }

    /// A delivery given up: the sender and the owner are told which destination failed and why.
    func noticeDeadLetter(_ record: DeliveryRecord, error: String, actor: String) async throws {
        guard let message = try await store.message(record.messageID) else { return }
        let job = try await store.jobs(messageID: record.messageID).first { $0.number == record.job }
        let directive: Directive? = if let job { try await store.directive(job.directive) } else { nil }
        let what = record.kind == .relay ? "your message" : "the scanned documents" + (directive.map { " for \"\($0.title)\"" } ?? "")
        let body = """
            Waybill gave up delivering \(what) to \(record.destination.replacingOccurrences(of: "mailto:", with: "")).

            The scan was received on \(Self.format(message.receivedAt)); delivery was tried \(record.attempts + 1) time(s).
            The last attempt failed with: \(error)

            What to do next: check that the destination is right and reachable; an administrator
            can send it again with `waybill queue retry \(record.id)` once it is fixed.

            -- 
            Waybill, on \(options.hostname). This notice was sent automatically; replies are not read.
            """
        var notices: [Notice] = []
        if let sender = message.notify {
            notices.append(Notice(kind: "dead-letter", to: sender, subject: "Delivery failed: \(record.destination)", body: body))
        }
        if let owner = directive?.owner {
            notices.append(Notice(kind: "dead-letter", to: owner, subject: "Delivery failed: \(record.destination)", body: body))
        }
        try await queue(notices, messageID: record.messageID, job: record.job, actor: actor)
    }

    /// When the last destination of a job is delivered and its directive asks for it.
    func confirmIfComplete(_ record: DeliveryRecord, actor: String) async throws {
        guard let job = try await store.jobs(messageID: record.messageID).first(where: { $0.number == record.job }),
            let directive = try await store.directive(job.directive), directive.options.deliveryConfirmation
        else { return }
        let rows = try await store.deliveries(messageID: record.messageID).filter { $0.job == record.job && $0.kind == .document }
        guard rows.allSatisfy({ $0.state == .delivered }) else { return }
        let message = try await store.message(record.messageID)
        let lines = rows.map { "  - \($0.destination.replacingOccurrences(of: "mailto:", with: "")): \($0.target)" }.joined(separator: "\n")
        let body = """
            The documents scanned with your routing sheet "\(directive.title)" (\(directive.id.display)) were delivered.

            Scanned by: \(message?.sender.isEmpty == false ? message!.sender : "unknown sender")
            Received: \(message.map { Self.format($0.receivedAt) } ?? "")
            Delivered to:
            \(lines)

            -- 
            Waybill, on \(options.hostname). You asked for this confirmation on the directive; replies are not read.
            """
        try await queue(
            [Notice(kind: "delivered", to: directive.owner, subject: "Delivered: \(directive.title)", body: body)],
            messageID: record.messageID, job: record.job, actor: actor)
    }

    /// A refusal in a person's words, and what they can do about it.
    static func explain(_ reason: String, directive: Directive?, sheetsURL: String?) -> (String, String) {
        let newSheet = "print a new routing sheet" + (sheetsURL.map { " from \($0)" } ?? " (waybill sheet, or the web app)") + " and scan again."
        let title = directive.map { "\"\($0.title)\"" } ?? "this routing sheet"
        switch reason {
        case "no-rule":
            return ("No routing rule accepts the address it was sent to.", "send scans to the scan address your administrator gave you.")
        case "no-attachment":
            return ("The message carried no scan (a PDF, TIFF, JPEG or PNG attachment).", "scan the documents again with the scanner's scan-to-email function.")
        case "no-sheet":
            return ("No routing sheet was found on the first page of the scan.", "put a routing sheet on top of the documents and scan again; or " + newSheet)
        case "forged":
            return ("The routing sheet's code did not verify: the sheet was altered, or made by another system.", newSheet)
        case "unknown-directive":
            return ("The routing sheet names a directive that does not exist (it may have been deleted).", newSheet)
        case "revoked":
            return ("The routing sheet \(title) was revoked by its owner.", "ask its owner for a current sheet, or " + newSheet)
        case "expired":
            let when = directive?.expiresAt.map { " on \(format($0))" } ?? ""
            return ("The routing sheet \(title) expired\(when).", newSheet)
        case "used-up":
            return ("The routing sheet \(title) has been used as many times as it allows.", newSheet)
        case "malformed-batch":
            return ("The pages were not in an order Waybill can route (for example two routing sheets in a row, or a sheet with no documents after it).", "put each routing sheet directly on top of its documents and scan again.")
        case "unreadable-message", "unreadable-attachment":
            return ("The scan could not be read (the file is damaged, encrypted or not a scan).", "scan again; if it happens again, ask your administrator to look at the scanner's settings.")
        case "worker-crash":
            return ("Routing this scan failed repeatedly.", "your administrator has been told; scan again later.")
        default:
            return ("Waybill could not route this scan (\(reason)).", "ask your administrator.")
        }
    }
}
