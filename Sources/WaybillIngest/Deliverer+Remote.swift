import Foundation
import WaybillCore
import WaybillDelivery
import WaybillScan
import WaybillStore

/// Mail through the smarthost and webhooks: the transports that leave the machine.
extension Deliverer {
    /// A job's document as an attachment, with a subject and body from its directive.
    func mailDocument(_ record: DeliveryRecord, to address: String) async throws -> String {
        guard smtp != nil else { throw Self.noSmarthost }
        let about = try await describe(record)
        let pages = about.pages.map { "\($0) page\($0 == 1 ? "" : "s")" } ?? "scanned pages"
        let sender = about.message?.sender.isEmpty == false ? about.message!.sender : "a scanner"
        let title = about.directive?.title ?? "scanned documents"
        var body = """
            \(pages) scanned by \(sender)\(about.message.map { " on \(Self.format($0.receivedAt))" } ?? ""), \
            delivered by the routing sheet "\(title)"\(about.directive.map { " (\($0.id.display))" } ?? "").

            The document is attached: \(record.fileName).
            """
        if let notes = about.directive?.options.notes, !notes.isEmpty { body += "\n\nNotes: \(notes)" }
        body += "\n\n-- \nWaybill, on \(options.hostname). Sent automatically on behalf of the directive's owner."
        let mail = OutgoingMail(
            from: options.mailFrom, fromName: "Waybill", to: [address], subject: "Scan: \(title) (\(pages) from \(sender))",
            body: body,
            attachments: [OutgoingMail.Attachment(fileName: record.fileName, contentType: "application/pdf", file: URL(fileURLWithPath: record.document))],
            // The same on every attempt: a receiver may drop a duplicate the one SMTP window leaves (see README).
            messageID: "waybill.\(record.messageID).\(record.job).\(record.id)@\(options.hostname)", date: now(),
            extraHeaders: [
                ("Auto-Submitted", "auto-generated"), ("X-Waybill-Message", record.messageID),
                ("X-Waybill-Directive", about.directive?.id.display ?? ""),
            ])
        let folder = outbox.folder(record.messageID)
        let file = folder.appendingPathComponent("mail-\(record.id).eml")
        try await Pipeline.offPool {
            try Pipeline.createDirectory(folder)
            try mail.write(to: file)
        }
        defer { try? FileManager.default.removeItem(at: file) }
        return try await submit(from: options.mailFrom, to: address, file: file)
    }

    /// A file that is a whole message already: a relayed message (from its own sender) or a
    /// notice (from the null sender, so that nothing ever answers it).
    func mailFile(_ record: DeliveryRecord, to address: String) async throws -> String {
        guard smtp != nil else { throw Self.noSmarthost }
        let from: String
        if record.kind == .relay {
            from = try await store.message(record.messageID)?.sender ?? ""
        } else {
            from = ""
        }
        return try await submit(from: from, to: address, file: URL(fileURLWithPath: record.document))
    }

    func submit(from: String, to address: String, file: URL) async throws -> String {
        guard let smtp else { throw Self.noSmarthost }
        let result = try await smtp.send(from: from, to: [address], message: file)
        if let refusal = result.refused.values.first, result.accepted.isEmpty { throw refusal }
        return result.reply
    }

    static var noSmarthost: DeliveryFailure {
        .temporary("no smarthost is configured (WAYBILL_SMARTHOST=host:port); the mail waits in the queue")
    }

    /// The document and its metadata, signed; the idempotency key is the row's, the same on
    /// every attempt, so a receiver that saw a request before can tell.
    func postWebhook(_ record: DeliveryRecord, to url: String) async throws -> String {
        guard let webhooks else { throw DeliveryFailure.temporary("webhooks are not set up in this process") }
        if let allowed = options.webhookAllowList {
            do {
                try DestinationPolicy(folderRoots: [:], webhookPrefixes: allowed).check(.webhook(url))
            } catch {
                throw DeliveryFailure.permanent("\(url) is no longer on the webhook allow-list (allow_webhook): \(error.message)")
            }
        }
        let about = try await describe(record)
        var metadata: [String: Any] = [
            "message": record.messageID, "job": record.job, "delivery": record.id, "file_name": record.fileName,
            "sha256": record.sha256, "content_type": "application/pdf",
        ]
        if let message = about.message {
            metadata["sender"] = message.sender
            metadata["recipients"] = message.recipients
            metadata["received_at"] = ISO8601DateFormatter().string(from: message.receivedAt)
        }
        if let pages = about.pages { metadata["pages"] = pages }
        if let directive = about.directive {
            metadata["directive"] = ["id": directive.id.display, "title": directive.title, "owner": directive.owner]
        }
        let json = try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys])
        let request = WebhookRequest(
            url: url, document: URL(fileURLWithPath: record.document), fileName: record.fileName, metadata: json,
            idempotencyKey: "waybill-\(record.messageID)-\(record.job)-\(record.id)")
        // Signed with the real time, whatever clock schedules the retries: receivers check it against theirs.
        let result = try await webhooks.post(request, now: Date())
        return "HTTP \(result.status)"
    }

    struct About {
        var message: MessageRecord?
        var directive: Directive?
        var pages: Int?
    }

    func describe(_ record: DeliveryRecord) async throws -> About {
        var about = About()
        about.message = try await store.message(record.messageID)
        if let job = try await store.jobs(messageID: record.messageID).first(where: { $0.number == record.job }) {
            about.directive = try await store.directive(job.directive)
        }
        let path = record.document
        about.pages = try? await Pipeline.offPool { try PDFDocument(path: path).pageCount }
        return about
    }
}
