import Crypto
import Dispatch
import Synchronization
public import Foundation
public import Logging
public import WaybillCore
public import WaybillDelivery
import WaybillMIME
import WaybillScan
public import WaybillStore

/// A message for the pipeline: where its bytes are and how it arrived.
public struct IngestMessage: Sendable {
    public var id: String
    public var file: URL
    public var sender: String
    public var recipients: [String]
    public var receivedAt: Date
    /// Set by an operator's `quarantine reroute`: skip the rules, use this directive.
    public var directiveOverride: DirectiveID?
    /// A mail message (from SMTP or an `.eml` file) whose attachments are the scans; false for
    /// a scan file itself, from `waybill ingest`, which searches for routing sheets.
    public var isMail: Bool
    /// The SMTP session's authenticated user, if it logged in.
    public var authenticatedUser: String?
    /// The SMTP client's IP address.
    public var clientAddress: String?
    /// Skip the rules and do this (a rule's failover, run after its action was refused).
    public var forcedAction: RoutingRule.Action?

    public init(
        id: String, file: URL, sender: String, recipients: [String], receivedAt: Date, directiveOverride: DirectiveID? = nil,
        isMail: Bool = true, authenticatedUser: String? = nil, clientAddress: String? = nil
    ) {
        self.authenticatedUser = authenticatedUser
        self.clientAddress = clientAddress
        self.isMail = isMail
        self.id = id
        self.file = file
        self.sender = sender
        self.recipients = recipients
        self.receivedAt = receivedAt
        self.directiveOverride = directiveOverride
    }
}

/// What became of a message.
public enum IngestOutcome: Sendable, Hashable {
    /// Every job accepted: `files` written to folders at once, `queued` deliveries left to the
    /// delivery queue (mail, webhooks, and folder writes to be retried).
    case delivered(jobs: Int, files: [String], pages: Int = 0, queued: Int = 0)
    case quarantined(reason: String, detail: String, pages: Int = 0)

    public var name: String {
        switch self {
        case .delivered: "delivered"
        case .quarantined(let reason, _, _): "quarantined:\(reason)"
        }
    }
}

/// The ingest pipeline (DESIGN.md): MIME → attachments → decode → verify → resolve → jobs →
/// documents → folder deliveries → journal, with quarantine for everything refused. One piece
/// of code for `serve`, `ingest` and the operator's reroute and release.
///
/// Idempotent: every step checks the ledger first, so running a message again after a crash
/// at any point delivers each document to each destination once (see `deliver`).
public struct Pipeline: Sendable {
    public let store: SQLiteDirectiveStore
    public let dataDirectory: DataDirectory
    public let rules: RoutingRules
    public let batchRules: BatchRules
    public let folders: FolderTransport
    public let smtp: SMTPClient?
    public let webhooks: WebhookTransport?
    public let delivery: DeliveryOptions
    public let now: @Sendable () -> Date
    /// Called when a message left deliveries in the queue: the delivery queue's wake-up.
    public let onQueued: @Sendable () -> Void
    public let logger: Logger
    /// Counts messages routed and quarantined, pages decoded and their decode time, and (through
    /// `deliverer`) delivery attempts.
    public let metrics: Metrics
    /// How long the scans of a delivered mail message are kept (in `<data>/scans/<id>/`) for
    /// people to look at in the web app; 0 keeps none. The copy is for viewing: the ledger and
    /// the outbox do not depend on it.
    public var keepScans: TimeInterval = 0

    public init(
        store: SQLiteDirectiveStore, dataDirectory: DataDirectory, rules: RoutingRules, batchRules: BatchRules = BatchRules(),
        folders: FolderTransport, smtp: SMTPClient? = nil, webhooks: WebhookTransport? = nil,
        delivery: DeliveryOptions = DeliveryOptions(), now: @escaping @Sendable () -> Date = { Date() },
        onQueued: @escaping @Sendable () -> Void = {}, logger: Logger = Logger(label: "waybill.ingest"),
        metrics: Metrics = Metrics()
    ) {
        self.metrics = metrics
        self.smtp = smtp
        self.webhooks = webhooks
        self.delivery = delivery
        self.now = now
        self.onQueued = onQueued
        self.store = store
        self.dataDirectory = dataDirectory
        self.rules = rules
        self.batchRules = batchRules
        self.folders = folders
        self.logger = logger
    }

    /// Starts on one message before it goes to quarantine as `worker-crash`.
    public static let maximumAttempts = 5

    /// The outbox rows' attempts, through the same transports and options.
    public var deliverer: Deliverer {
        Deliverer(
            store: store, dataDirectory: dataDirectory, folders: folders, smtp: smtp, webhooks: webhooks, options: delivery, now: now,
            logger: Logger(label: "waybill.delivery"), metrics: metrics)
    }

    public var workDirectory: URL { dataDirectory.url.appendingPathComponent("work", isDirectory: true) }
    public var quarantineDirectory: URL { dataDirectory.url.appendingPathComponent("quarantine", isDirectory: true) }
    public var keptScansDirectory: URL { dataDirectory.url.appendingPathComponent("scans", isDirectory: true) }

    /// The kept scans of a delivered message, in message order (empty when none are kept).
    public func keptScans(_ id: String) -> [URL] {
        let folder = keptScansDirectory.appendingPathComponent(id, isDirectory: true)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// Moves a delivered message's scan attachments out of its work folder (a rename on the same
    /// file system, no copy) into `scans/<id>/`, numbered in message order; then, at most once an
    /// hour, removes kept scans older than `keepScans`.
    func keep(_ scans: [URL], of id: String, work: URL) {
        guard keepScans > 0, !scans.isEmpty else { return }
        let inWork = scans.filter { $0.path.hasPrefix(work.path + "/") }
        if !inWork.isEmpty {
            let folder = keptScansDirectory.appendingPathComponent(id, isDirectory: true)
            do {
                try? FileManager.default.removeItem(at: folder)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for (number, scan) in inWork.enumerated() {
                    let name = String(format: "%03d-", number + 1) + scan.lastPathComponent
                    try FileManager.default.moveItem(at: scan, to: folder.appendingPathComponent(name))
                }
            } catch {
                logger.warning("could not keep the scans of \(id) for viewing: \(error)")
            }
        }
        let now = Date()
        let due = Self.lastPrune.withLock { last -> Bool in
            let key = keptScansDirectory.path
            guard now.timeIntervalSince(last[key] ?? .distantPast) >= 3600 else { return false }
            last[key] = now
            return true
        }
        if due { pruneKeptScans(olderThan: now.addingTimeInterval(-keepScans)) }
    }

    /// Removes kept scans older than `date` (by the folder's modification time).
    public func pruneKeptScans(olderThan date: Date) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: keptScansDirectory.path)) ?? []
        for name in names {
            let folder = keptScansDirectory.appendingPathComponent(name, isDirectory: true)
            let modified = (try? FileManager.default.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date) ?? nil
            if let modified, modified < date { try? FileManager.default.removeItem(at: folder) }
        }
    }

    static let lastPrune = Mutex<[String: Date]>([:])

    /// Where a refused message's original is kept: `<id>.eml` for mail, `<id>.<ext>` for a scan
    /// file from `ingest` (found by its id when the extension is not known).
    public func quarantinedFile(_ id: String, extension ext: String? = nil) -> URL {
        if let ext { return quarantineDirectory.appendingPathComponent(id + "." + ext) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: quarantineDirectory.path)) ?? []
        let name = names.first { $0.hasPrefix(id + ".") && !$0.hasSuffix(".tmp") } ?? id + ".eml"
        return quarantineDirectory.appendingPathComponent(name)
    }

    /// A quarantined original as a message to run again: mail if it is a `.eml`, else a scan file.
    public func quarantinedMessage(_ entry: QuarantineEntry, receivedAt: Date, directiveOverride: DirectiveID?) -> IngestMessage {
        let file = quarantinedFile(entry.messageID)
        return IngestMessage(
            id: entry.messageID, file: file, sender: entry.sender, recipients: entry.recipients, receivedAt: receivedAt,
            directiveOverride: directiveOverride, isMail: file.pathExtension == "eml")
    }

    /// Routes one message to the end: delivered, or quarantined with its original kept.
    /// Throws only when the outcome could not be recorded (the store or the disk failed): the
    /// message then stays where it was, to be tried again.
    ///
    /// A message already finished (delivered or quarantined) is not run again unless `again`
    /// is set, as an operator's release or reroute does: a restart that finds it still in the
    /// spool only tidies up.
    public func process(_ message: IngestMessage, actor: String = "worker", again: Bool = false) async throws -> IngestOutcome {
        let started = ContinuousClock.now
        var timings: [String: Duration] = [:]
        // One process at a time per message: `serve` and an operator's release cannot both run
        // it (an flock on the message's own file: no lock file to create per message).
        let lock = try MessageLock(file: message.file, id: message.id)
        defer { lock.release() }
        let (record, attempt) = try await store.startProcessing(
            MessageRecord(
                id: message.id, receivedAt: message.receivedAt, sender: message.sender, recipients: message.recipients,
                size: Self.fileSize(message.file)),
            again: again,
            journal: [entry(message.id, "processing", "from <\(message.sender)> to \(message.recipients.joined(separator: ", "))", actor)])
        if !again {
            switch record.state {
            case .received:
                break
            case .done:
                return .delivered(jobs: try await store.jobs(messageID: message.id).count, files: [])
            case .quarantined:
                let entry = try await store.quarantineEntry(message.id)
                return .quarantined(reason: entry?.reason ?? record.outcome ?? "unknown", detail: entry?.detail ?? "")
            }
        }
        try Self.createDirectory(workDirectory)
        let work = workDirectory.appendingPathComponent(message.id, isDirectory: true)
        try? FileManager.default.removeItem(at: work)
        try Self.createDirectory(work)
        defer { try? FileManager.default.removeItem(at: work) }

        let outcome: IngestOutcome
        var subject: String?
        // Journal lines of the steps so far, written with the next change of state: one transaction, not one each.
        var history: [JournalEntry] = []
        do {
            // A message that stopped the worker this often (killed for memory, crashed) is set aside.
            guard again || attempt <= Self.maximumAttempts else {
                throw BatchRefusal(
                    reason: "worker-crash",
                    detail: "routing this message was started \(attempt - 1) times and never finished; it may crash the worker")
            }
            outcome = try await route(message, work: work, timings: &timings, subject: &subject, history: &history, actor: actor)
        } catch let refusal as BatchRefusal where Self.failoverApplies(refusal) {
            // The rule's failover: run again with that action instead of quarantining.
            var failover = message
            failover.forcedAction = refusal.plan!.failover
            history.append(
                entry(message.id, "failover", "\(refusal.reason): \(refusal.detail); instead: \(refusal.plan!.failover!.description)", actor))
            try await store.journal(history)
            history = []
            do {
                outcome = try await route(failover, work: work, timings: &timings, subject: &subject, history: &history, actor: actor)
            } catch let second as BatchRefusal {
                outcome = try await quarantine(
                    message, reason: second.reason, detail: second.detail, subject: subject, pages: second.plan?.pages ?? 0,
                    history: history, actor: actor)
                await noticeQuarantined(message, second, subject: subject, actor: actor)
            }
        } catch let refusal as BatchRefusal {
            outcome = try await quarantine(
                message, reason: refusal.reason, detail: refusal.detail, subject: subject, pages: refusal.plan?.pages ?? 0,
                history: history, actor: actor)
            await noticeQuarantined(message, refusal, subject: subject, actor: actor)
        }
        if case .delivered(let jobs, let files, _, let queued) = outcome {
            try await store.finishMessage(
                message.id, state: .done, outcome: queued == 0 ? "delivered" : "queued", at: Date(),
                journal: history + [
                    entry(
                        message.id, "done",
                        "\(jobs) job(s), \(files.count) file(s) delivered" + (queued > 0 ? ", \(queued) delivery(ies) queued" : ""), actor)
                ])
            if queued > 0 { onQueued() }
        }
        switch outcome {
        case .delivered: metrics.messageDelivered()
        case .quarantined(let reason, _, _): metrics.messageQuarantined(reason: reason)
        }
        let total = ContinuousClock.now - started
        logger.info(
            "message routed",
            metadata: [
                "id": "\(message.id)", "outcome": "\(outcome.name)",
                "ms": "\(Self.milliseconds(total))",
                "timings": "\(timings.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.milliseconds($0.value))ms" }.joined(separator: " "))",
            ])
        return outcome
    }

    /// A failover is for what the rule's action could not do with this scan (no sheet, a sheet
    /// that is not good, an unusable directive), not for a message that cannot be read at all.
    static func failoverApplies(_ refusal: BatchRefusal) -> Bool {
        guard refusal.plan?.failover != nil else { return false }
        return ["no-sheet", "forged", "unknown-directive", "revoked", "expired", "used-up", "malformed-batch"].contains(refusal.reason)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// What routing a message would do, found without changing anything: the rule, the
    /// attachments, the pages and sheets, the jobs and their directives. `ingest --dry-run`
    /// prints it; `process` carries it out. A refusal is thrown as a `BatchRefusal`.
    public struct Plan: Sendable {
        public var rule: String?
        public var subject: String?
        public var attachments: [String] = []
        /// Attachments that are not scans (they are not delivered).
        public var skipped: [String] = []
        public var pages = 0
        public var sheets = 0
        public var jobs: [PlannedJob] = []
        public var directives: [DirectiveID: Directive] = [:]
        /// The message is automatic mail (Auto-Submitted, a list, a notice): no notice answers it.
        public var automatic = false
        /// What the rules decided for the scans: search for sheets or one directive (nil: no scan work).
        public var search = false
        /// Directives every page goes to, no sheet needed (`directive:ID` rules).
        public var fixed: [DirectiveID] = []
        /// What to do instead if the scan's routing is refused (no sheet, expired, …): the first
        /// search or directive rule's failover.
        public var failover: RoutingRule.Action?
        /// Recipients the message is relayed to as it is, through the smarthost.
        public var relays: [String] = []
        /// Destinations named by the address itself (one-off addresses, `deliver:` rules): every page.
        public var oneOff: [Destination] = []
        /// Every page of every scan, in order (for one-off destinations).
        var allPages: [PageReference] = []
        /// The scan files, in message order.
        var scanFiles: [URL] = []
        /// Journal lines for the planning steps, written when the plan is carried out.
        var history: [(event: String, detail: String)] = []
        var timings: [String: Duration] = [:]
    }

    /// Plans a message into `work` (its attachments are written there). Reads the store, writes nothing to it.
    public func plan(_ message: IngestMessage, work: URL) async throws -> Plan {
        var plan = Plan()
        do {
            try await makePlan(message, work: work, into: &plan)
        } catch var refusal as BatchRefusal {
            refusal.plan = plan
            throw refusal
        }
        return plan
    }

    private func makePlan(_ message: IngestMessage, work: URL, into plan: inout Plan) async throws {
        // 1. MIME: attachments to files, streaming. A scan file from a folder is its own attachment.
        var clock = ContinuousClock.now
        var scans: [URL] = []
        var parsed: MIMEMessage?
        var parseError: WaybillError?
        if message.isMail {
            do {
                parsed = try await Self.offPool { try MIMEParser.extract(messageAt: message.file, into: work) }
            } catch let error as WaybillError {
                parseError = error
            }
            plan.timings["mime"] = ContinuousClock.now - clock
        }

        // 2. The routing rules, for every recipient, with what is known now (the sender, the
        // session, the attachments, the size); or what an operator or a failover forces.
        let forced = message.forcedAction ?? message.directiveOverride.map { .applyDirective($0) }
        if forced == nil, message.isMail, !message.recipients.isEmpty {
            let size = Self.fileSize(message.file)
            let decisions = message.recipients.map {
                rules.decide(
                    RoutingContext(
                        recipient: $0, sender: message.sender, authenticatedUser: message.authenticatedUser,
                        clientAddress: message.clientAddress, hasAttachments: parsed.map { !$0.attachments.isEmpty }, size: size))
            }
            let steps = zip(message.recipients, decisions).flatMap { recipient, decision in decision.actions.map { (recipient, $0) } }
            guard !steps.isEmpty else {
                let refusals = decisions.compactMap(\.refusal)
                throw BatchRefusal(
                    reason: "no-rule",
                    detail: "no routing rule accepts \(message.recipients.joined(separator: ", "))"
                        + (refusals.isEmpty ? "" : ": " + Array(Set(refusals)).sorted().joined(separator: "; ")))
            }
            for (recipient, step) in steps {
                plan.history.append(("rule", "\(recipient): rule \(step.number) (\(step.rule.pattern)): \(step.actionDescription)"))
                switch step.action {
                case .relay: plan.relays.append(recipient)
                case .deliverTo(let destination): plan.oneOff.append(destination)
                case .searchSheets, .applyDirective:
                    if !plan.search, plan.fixed.isEmpty { plan.failover = step.failover }
                    if case .applyDirective(let id) = step.action {
                        if !plan.fixed.contains(id) { plan.fixed.append(id) }
                    } else {
                        plan.search = true
                    }
                case .refuse: break
                }
            }
            plan.rule = steps.map { "rule \($0.1.number) (\($0.1.rule.pattern)): \($0.1.actionDescription)" }.joined(separator: "; ")
        } else if let forced {
            switch forced {
            case .relay: plan.relays = message.recipients
            case .deliverTo(let destination): plan.oneOff = [destination]
            case .applyDirective(let id): plan.fixed = [id]
            case .searchSheets, .refuse: plan.search = true
            }
        } else {
            plan.search = true
        }
        if !plan.search, plan.fixed.isEmpty, plan.oneOff.isEmpty {
            // Only relays: the message goes as it is; nothing in it needs reading.
            plan.subject = parsed?.subject
            plan.automatic = parsed?.isAutomatic ?? false
            return
        }

        if message.isMail {
            guard let parsed else {
                throw BatchRefusal(reason: "unreadable-message", detail: "the message could not be parsed: \(parseError?.message ?? "")")
            }
            plan.subject = parsed.subject
            plan.automatic = parsed.isAutomatic
            scans = parsed.attachments.filter { ScanFormat(path: $0.url.path) != nil }.map(\.url)
            plan.attachments = parsed.attachments.filter { ScanFormat(path: $0.url.path) != nil }.map(\.filename)
            plan.skipped = parsed.attachments.filter { ScanFormat(path: $0.url.path) == nil }.map(\.filename)
            if !plan.skipped.isEmpty {
                plan.history.append(("skipped", "not scans (PDF, TIFF, JPEG, PNG): \(plan.skipped.joined(separator: ", "))"))
            }
            guard !scans.isEmpty else {
                throw BatchRefusal(
                    reason: "no-attachment",
                    detail: parsed.attachments.isEmpty
                        ? "the message has no attachments" : "no attachment is a scan (PDF, TIFF, JPEG or PNG)")
            }
        } else {
            guard ScanFormat(path: message.file.path) != nil else {
                throw BatchRefusal(reason: "unreadable-attachment", detail: "not a PDF, TIFF, JPEG or PNG file")
            }
            scans = [message.file]
            plan.attachments = [message.file.lastPathComponent]
        }

        // 3. Pages: decoded for sheets, or all of them for a fixed directive.
        clock = ContinuousClock.now
        plan.scanFiles = scans
        let files = scans
        if !plan.search {
            // Fixed directives and one-off destinations: every page, as scanned; nothing to decode.
            plan.allPages = try await Self.offPool { try Self.countPages(files) }
            plan.pages = plan.allPages.count
            plan.jobs = plan.fixed.map { PlannedJob(directive: $0, sheet: nil, pages: plan.allPages) }
        } else {
            // Existing keys only: planning creates nothing (a data directory without keys verifies no sheet).
            let keys =
                FileManager.default.fileExists(atPath: dataDirectory.keysPath) ? try dataDirectory.loadKeys() : SigningKeys(keys: [])
            let metrics = self.metrics
            let pages = try await Self.offPool { try Self.classify(files, keys: keys, metrics: metrics) }
            plan.timings["decode"] = ContinuousClock.now - clock
            plan.pages = pages.count
            plan.sheets = pages.filter { if case .sheet = $0.1 { true } else { false } }.count
            plan.history.append(("decoded", "\(pages.count) page(s) in \(scans.count) file(s), \(plan.sheets) routing sheet(s)"))
            plan.allPages = pages.map(\.0)
            // Fixed directives (rules with stop: false before a search) get every document page,
            // then each sheet's job. A batch the sheets cannot route leaves the fixed jobs standing.
            let documents = pages.filter { if case .document = $0.1 { true } else { false } }.map(\.0)
            plan.jobs = plan.fixed.map { PlannedJob(directive: $0, sheet: nil, pages: documents) }
            switch BatchPlanner.plan(pages, rules: batchRules) {
            case .success(let jobs): plan.jobs += jobs
            case .failure(let refusal) where !plan.jobs.isEmpty:
                plan.history.append(("search", "no sheet jobs: \(refusal.reason): \(refusal.detail)"))
            case .failure(let refusal): throw refusal
            }
        }

        // 4. Directives: each must exist and be usable. Jobs accepted on an earlier run (before
        // a crash) stand: their uses are already counted.
        let acceptedBefore = !(try await store.jobs(messageID: message.id).isEmpty)
        for job in plan.jobs where plan.directives[job.directive] == nil {
            guard let directive = try await store.directive(job.directive) else {
                throw BatchRefusal(reason: "unknown-directive", detail: "no directive \(job.directive.display) exists")
            }
            let status = directive.status(at: Date())
            guard status.isActive || acceptedBefore else {
                let reason =
                    switch status {
                    case .revoked: "revoked"
                    case .expired, .idleExpired: "expired"
                    case .usedUp: "used-up"
                    case .active: "active"
                    }
                var refusal = BatchRefusal(reason: reason, detail: status.explanation(for: job.directive))
                refusal.directive = directive
                throw refusal
            }
            plan.directives[job.directive] = directive
        }
    }

    private func route(
        _ message: IngestMessage, work: URL, timings: inout [String: Duration], subject: inout String?,
        history: inout [JournalEntry], actor: String
    ) async throws -> IngestOutcome {
        let plan: Plan
        do {
            plan = try await self.plan(message, work: work)
        } catch let refusal as BatchRefusal {
            if let partial = refusal.plan {
                subject = partial.subject
                history += partial.history.map { entry(message.id, $0.event, $0.detail, actor) }
            }
            throw refusal
        }
        subject = plan.subject
        timings.merge(plan.timings) { $1 }
        history += plan.history.map { entry(message.id, $0.event, $0.detail, actor) }
        let planned = plan.jobs
        let directives = plan.directives
        var clock = ContinuousClock.now
        let jobs: [JobRecord]
        do {
            jobs = try await store.acceptJobs(messageID: message.id, directives: planned.map(\.directive), at: Date())
        } catch let error as WaybillError where error.code == .directiveInactive {
            throw BatchRefusal(reason: "used-up", detail: error.message)
        }
        guard jobs.count == planned.count, zip(jobs, planned).allSatisfy({ $0.directive == $1.directive }) else {
            throw BatchRefusal(
                reason: "changed-batch", detail: "this message was accepted before with other jobs; release or delete it instead")
        }
        history.append(
            entry(message.id, "accepted", jobs.map { "job \($0.number): directive \($0.directive.display)" }.joined(separator: "; "), actor))
        try await store.journal(history)
        history = []
        CrashPoint.reached("after-accept")

        // 5. Documents into the outbox, a delivery row for each destination, folders written at once.
        if let notify = noticeAddress(message, automatic: plan.automatic) { try await store.setNotify(message.id, address: notify) }
        clock = ContinuousClock.now
        let deliverer = self.deliverer
        var files: [String] = []
        var queued = 0
        for (job, plan) in zip(jobs, planned) {
            guard let directive = directives[job.directive] else { continue }
            let (document, digest) = try await keepDocument(job: job.number, pages: plan.pages, message: message, work: work)
            let fileName = FileNamePattern.render(
                directive.options.fileNamePattern, date: message.receivedAt, directive: directive.id, messageID: message.id,
                title: directive.title, job: job.number, extension: "pdf")
            let rows = try await store.enqueue(
                directive.destinations.map {
                    NewDelivery(
                        messageID: message.id, job: job.number, kind: .document, destination: $0.uri, document: document.path,
                        fileName: fileName, sha256: digest)
                },
                at: now(), journal: [])
            for row in rows {
                switch row.state {
                case .delivered:
                    if case .folder = try? Destination(uri: row.destination) { files.append(row.target) }
                case .queued, .sending:
                    // Folders are local and fast: written now. Mail and webhooks wait for the queue.
                    if row.state == .queued, case .folder = try? Destination(uri: row.destination),
                        case .delivered(let target)? = try await deliverer.attempt(row.id, actor: actor)
                    {
                        files.append(target)
                    } else {
                        queued += 1
                    }
                case .dead, .purged:
                    break
                }
            }
        }
        // Every page to the destinations the address itself names; the message as it is to relay recipients.
        var extra: [NewDelivery] = []
        if !plan.oneOff.isEmpty {
            let (document, digest) = try await keepDocument(job: 0, pages: plan.allPages, message: message, work: work)
            let fileName = FileNamePattern.render(
                "{date}-{message}.pdf", date: message.receivedAt, directive: nil, messageID: message.id, title: plan.subject ?? "scan",
                job: 0, extension: "pdf")
            extra += plan.oneOff.map {
                NewDelivery(
                    messageID: message.id, job: 0, kind: .document, destination: $0.uri, document: document.path, fileName: fileName,
                    sha256: digest)
            }
        }
        if !plan.relays.isEmpty {
            let (original, digest) = try await keepOriginal(message)
            extra += plan.relays.map {
                NewDelivery(
                    messageID: message.id, job: 0, kind: .relay, destination: "mailto:" + $0, document: original.path,
                    fileName: "message.eml", sha256: digest)
            }
        }
        for row in try await store.enqueue(extra, at: now(), journal: []) {
            if row.state == .queued, case .folder = try? Destination(uri: row.destination),
                case .delivered(let target)? = try await deliverer.attempt(row.id, actor: actor)
            {
                files.append(target)
            } else if row.state == .delivered {
                files.append(row.target)
            } else if !row.state.isFinal {
                queued += 1
            }
        }
        timings["deliver"] = ContinuousClock.now - clock
        keep(plan.scanFiles, of: message.id, work: work)
        return .delivered(jobs: jobs.count, files: files, pages: plan.pages, queued: queued)
    }

    /// The message itself, for a relay: copied into the outbox (the spool's copy goes when the message is done).
    private func keepOriginal(_ message: IngestMessage) async throws -> (URL, String) {
        let outbox = deliverer.outbox
        let kept = outbox.folder(message.id).appendingPathComponent("message.eml")
        return try await Self.offPool {
            if FileManager.default.fileExists(atPath: kept.path) { return (kept, try Self.sha256(kept)) }
            try Self.createDirectory(outbox.url)
            let temporary = outbox.url.appendingPathComponent(".\(message.id)-message.eml.tmp")
            try? FileManager.default.removeItem(at: temporary)
            do {
                try FileManager.default.copyItem(at: message.file, to: temporary)
            } catch {
                throw WaybillError(.ioError, "cannot keep message \(message.id) for relaying: \(error.localizedDescription)")
            }
            let digest = try Self.sha256(temporary)
            return (try outbox.keep(temporary, messageID: message.id, as: "message.eml"), digest)
        }
    }

    /// A job's document, kept in the outbox until its deliveries are done. Written once: a
    /// message run again after a crash finds it there and delivers the same bytes.
    private func keepDocument(job: Int, pages: [PageReference], message: IngestMessage, work: URL) async throws -> (URL, String) {
        let outbox = deliverer.outbox
        let name = "job-\(job).pdf"
        let kept = outbox.folder(message.id).appendingPathComponent(name)
        do {
            return try await Self.offPool {
                if FileManager.default.fileExists(atPath: kept.path) { return (kept, try Self.sha256(kept)) }
                let document = work.appendingPathComponent(name)
                try DocumentAssembler.writePDF(pages: pages, to: document, creationDate: message.receivedAt)
                let digest = try Self.sha256(document)
                return (try outbox.keep(document, messageID: message.id, as: name), digest)
            }
        } catch let error as WaybillError where error.code != .ioError {
            throw BatchRefusal(
                reason: "unreadable-attachment", detail: "job \(job): its document could not be made: \(error.message) [\(error.code)]")
        }
    }

    /// Who a notice about this message may go to: its sender, when the sender is in a
    /// configured domain or logged in, and the message is not automatic. Nobody otherwise.
    func noticeAddress(_ message: IngestMessage, automatic: Bool) -> String? {
        guard delivery.notices, message.isMail, !automatic, Destination.isValidEmail(message.sender) else { return nil }
        if message.authenticatedUser != nil { return message.sender }
        let domain = message.sender.split(separator: "@").last.map { $0.lowercased() } ?? ""
        return delivery.localDomains.contains(domain) ? message.sender : nil
    }

    /// Failure notices for a quarantined message; a failure to queue them is logged, not thrown.
    private func noticeQuarantined(_ message: IngestMessage, _ refusal: BatchRefusal, subject: String?, actor: String) async {
        guard delivery.notices else { return }
        do {
            let file = message.file
            let automatic =
                message.isMail ? ((try? await Self.offPool { try MIMEParser.headers(messageAt: file).isAutomatic }) ?? true) : true
            if let notify = noticeAddress(message, automatic: automatic) { try await store.setNotify(message.id, address: notify) }
            try await deliverer.noticeQuarantined(
                messageID: message.id, reason: refusal.reason, detail: refusal.detail, subject: subject, directive: refusal.directive,
                actor: actor)
            onQueued()
        } catch {
            logger.error("failure notice not queued", metadata: ["id": "\(message.id)", "error": "\(error)"])
        }
    }

    /// Keeps the original, records why, and takes it out of the spool's hands.
    private func quarantine(
        _ message: IngestMessage, reason: String, detail: String, subject: String?, pages: Int = 0, history: [JournalEntry] = [],
        actor: String
    ) async throws -> IngestOutcome {
        try Self.createDirectory(quarantineDirectory)
        let ext = message.isMail ? "eml" : (message.file.pathExtension.isEmpty ? "bin" : message.file.pathExtension.lowercased())
        let kept = quarantinedFile(message.id, extension: ext)
        if kept.standardizedFileURL.path != message.file.standardizedFileURL.path {
            let source = message.file
            let folder = quarantineDirectory
            try await Self.offPool {
                try? FileManager.default.removeItem(at: kept)
                do {
                    try FileManager.default.copyItem(at: source, to: kept)
                } catch {
                    throw WaybillError(.ioError, "cannot keep message \(message.id) in quarantine: \(error.localizedDescription)")
                }
                chmod(kept.path, 0o600)
                try DurableFile.sync(kept.path)
                DurableFile.syncDirectory(folder.path)
            }
        }
        try await store.quarantine(
            QuarantineEntry(
                messageID: message.id, reason: reason, detail: detail, at: Date(), sender: message.sender,
                recipients: message.recipients, subject: subject),
            journal: history + [entry(message.id, "quarantined", "\(reason): \(detail)", actor)])
        return .quarantined(reason: reason, detail: detail, pages: pages)
    }

    func entry(_ id: String, _ event: String, _ detail: String, _ actor: String) -> JournalEntry {
        JournalEntry(at: Date(), messageID: id, event: event, detail: detail, actor: actor)
    }

    // MARK: Blocking work

    /// Decoding, parsing and file writing block a thread for a long time: they run on Dispatch's
    /// pool, never on Swift's cooperative threads (where they would starve the SMTP sessions).
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Waits on a Dispatch thread (an inotify poll, say) without holding a cooperative one.
    public static func offPoolWait(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                work()
                continuation.resume()
            }
        }
    }

    /// Every page of every scan, in order, with what it is. Each page's decode time, for the
    /// metrics, runs from the previous page's (or the file's start) to its callback: the decoder
    /// hands pages over one by one as it reads them.
    static func classify(_ files: [URL], keys: SigningKeys, metrics: Metrics) throws -> [(PageReference, PageKind)] {
        let decoder = try ScanDecoder(keys: keys)
        var pages: [(PageReference, PageKind)] = []
        for file in files {
            var pageStarted = ContinuousClock.now
            do {
                try decoder.decode(path: file.path) { result in
                    metrics.pageDecoded(in: ContinuousClock.now - pageStarted)
                    defer { pageStarted = ContinuousClock.now }
                    let reference = PageReference(file: file.path, page: result.page)
                    let kind: PageKind
                    if let sheet = result.sheet {
                        if case .valid(let id) = sheet.verification { kind = .sheet(id) } else { kind = .unverifiedSheet(sheet.verification) }
                    } else if result.isSeparator {
                        kind = .separator
                    } else if result.isBlank {
                        kind = .blank
                    } else {
                        kind = .document
                    }
                    pages.append((reference, kind))
                }
            } catch {
                throw BatchRefusal(
                    reason: "unreadable-attachment", detail: "\(file.lastPathComponent): \(error.message) [\(error.code)]")
            }
        }
        return pages
    }

    static func countPages(_ files: [URL]) throws -> [PageReference] {
        var pages: [PageReference] = []
        for file in files {
            let count: Int
            do {
                switch ScanFormat(path: file.path) {
                case .pdf: count = try PDFDocument(path: file.path).pageCount
                case .tiff: count = try TIFFDocument(path: file.path).pageCount
                default: count = 1
                }
            } catch {
                throw BatchRefusal(reason: "unreadable-attachment", detail: "\(file.lastPathComponent): \(error.message) [\(error.code)]")
            }
            guard pages.count + count <= ScanDecoder.maximumPages else {
                throw BatchRefusal(
                    reason: "unreadable-attachment", detail: "more than \(ScanDecoder.maximumPages) pages; Waybill routes at most that many")
            }
            pages += (0..<count).map { PageReference(file: file.path, page: $0) }
        }
        return pages
    }

    static func sha256(_ url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw WaybillError(.ioError, "cannot read \(url.path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func fileSize(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WaybillError(.ioError, "cannot create \(url.path): \(error.localizedDescription)")
        }
    }
}

/// fsync of a file and of a folder, for what must survive a crash.
enum DurableFile {
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { close(fd) }
            throw WaybillError(.ioError, "cannot fsync \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

/// An exclusive `flock` on the message's own file: one process routes a message at a time. The
/// lock dies with its process, so a crash never leaves a message locked.
final class MessageLock {
    private let fd: Int32

    init(file: URL, id: String) throws {
        let path = file.path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot lock message \(id): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw WaybillError(.messageBusy, "message \(id) is being routed by another process right now; try again shortly")
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Crash windows for the restart tests: `WAYBILL_TEST_CRASH_AT=after-accept` (or `after-link`)
/// ends the process at once, as `kill -9` would, the first time that point is reached. Nothing
/// happens when the variable is unset.
enum CrashPoint {
    static let armed = ProcessInfo.processInfo.environment["WAYBILL_TEST_CRASH_AT"]

    static func reached(_ point: String) {
        if armed == point { _exit(137) }
    }
}
