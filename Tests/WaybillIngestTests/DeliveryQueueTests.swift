import Dispatch
import Foundation
import Synchronization
import Testing
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore

/// The delivery queue against real peers: aiosmtpd as the smarthost, a Python HTTP server as
/// the webhook receiver, a real SQLite file, documents made from real scans; the clock is the
/// test's, so retries and give-ups happen in test time.
@Suite(.serialized) struct DeliveryQueueTests {
    static let peers = PipelineTests.root.appendingPathComponent("Tests/WaybillDeliveryTests/Peers")

    /// A clock the test moves by hand.
    final class TestClock: Sendable {
        private let value: Mutex<Date>
        init(_ start: Date = Date()) { value = Mutex(start) }
        var now: Date { value.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
        func set(_ date: Date) { value.withLock { $0 = date } }
    }

    /// A Python peer started for one test: its port, its output folder; killed at the end.
    final class Peer: @unchecked Sendable {
        let process = Process()
        let out: URL
        var port = 0

        init(script: String, arguments: [String]) async throws {
            out = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-peer-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [DeliveryQueueTests.peers.appendingPathComponent(script).path, "--out", out.path] + arguments
            let stdout = Pipe()
            process.standardOutput = stdout
            try process.run()
            let handle = stdout.fileHandleForReading
            let line: String = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    var bytes: [UInt8] = []
                    while true {
                        let chunk = handle.readData(ofLength: 1)
                        if chunk.isEmpty || chunk.first == UInt8(ascii: "\n") { break }
                        bytes += chunk
                    }
                    continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
                }
            }
            guard line.hasPrefix("READY "), let port = Int(line.dropFirst(6)) else {
                process.terminate()
                throw WaybillError(.ioError, "\(script) did not start: '\(line)'")
            }
            self.port = port
        }

        /// SIGKILL: a child started from a Dispatch thread may have SIGTERM blocked.
        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        deinit { stop() }

        /// Files the peer wrote with this extension, in the order it wrote them.
        func files(_ ext: String) -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.hasSuffix("." + ext) }
                .sorted { $0.localizedStandardCompare($1) == .orderedAscending }.map { out.appendingPathComponent($0) }
        }

        func json(_ url: URL) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
        }
    }

    static func smarthost(_ arguments: [String] = []) async throws -> Peer {
        try await Peer(script: "smarthost.py", arguments: arguments)
    }

    /// A port nothing listens on: connections are refused at once.
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        // Kept bound, never listening, never closed: connections are refused, and no other test's
        // server can be given the port meanwhile (a closed one can, and would answer).
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The world's store and data directory with a pipeline that mails through `port`.
    static func pipeline(
        _ world: PipelineTests.World, smtpPort: Int?, webhooks: WebhookTransport? = nil, clock: TestClock,
        domains: [String] = ["office.example.com"], rules: RoutingRules = RoutingRules(configured: []), metrics: Metrics = Metrics()
    ) -> Pipeline {
        let smtp = smtpPort.map {
            var host = Smarthost(host: "127.0.0.1", port: $0, security: .none, heloName: "waybill.test")
            host.commandTimeout = .seconds(30)
            return SMTPClient(smarthost: host)
        }
        return Pipeline(
            store: world.store, dataDirectory: world.data, rules: rules,
            folders: FolderTransport(resolver: FolderResolver(roots: ["archive": world.archive.path])), smtp: smtp,
            webhooks: webhooks, delivery: DeliveryOptions(hostname: "waybill.test", localDomains: domains),
            now: { clock.now }, metrics: metrics)
    }

    static func directive(_ world: PipelineTests.World, to destinations: [String], confirm: Bool = false) async throws -> Directive {
        var draft = DirectiveDraft(title: "Accounts payable", owner: "ap@office.example.com", destinations: destinations)
        draft.options.deliveryConfirmation = confirm
        let directive = try draft.validated(
            id: .random(), now: Date(),
            policy: DestinationPolicy(
                folderRoots: ["archive": world.archive.path], webhookPrefixes: destinations.filter { $0.hasPrefix("http") }))
        try await world.store.insert(directive)
        return directive
    }

    /// A scanner's message carrying a sheet for `directive` and two pages.
    static func scan(_ world: PipelineTests.World, _ directive: Directive) throws -> IngestMessage {
        try world.mail([try world.scan(["sheet:\(try world.sheet(directive))", "doc:PAGE-1", "doc:PAGE-2"])])
    }

    @Test func mailAndFolderDestinationsEachGetTheDocumentOnce() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let clock = TestClock()
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: clock)
        let directive = try await Self.directive(world, to: ["folder:archive/inbox", "mailto:bob@example.com"])
        let message = try Self.scan(world, directive)
        let outcome = try await pipeline.process(message)
        guard case .delivered(1, let files, _, let queued) = outcome else { Issue.record("\(outcome)"); return }
        #expect(files.count == 1 && queued == 1)  // the folder at once, the mail queued
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        #expect(await queue.runDue() == 1)
        #expect(await queue.runDue() == 0)

        let mails = peer.files("eml")
        #expect(mails.count == 1)
        let envelope = try peer.json(try #require(peer.files("json").first))
        #expect(envelope["mail_from"] as? String == "waybill@waybill.test")
        #expect(envelope["rcpt_tos"] as? [String] == ["bob@example.com"])
        // The attachment is the very document the folder got: same bytes, the sheet not in it.
        let attachment = world.directory.appendingPathComponent("attachment.pdf")
        try PipelineTests.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import sys, email, email.policy
                msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
                assert msg["Auto-Submitted"] == "auto-generated", msg["Auto-Submitted"]
                assert "Accounts payable" in msg["Subject"], msg["Subject"]
                part = next(msg.iter_attachments())
                assert part.get_content_type() == "application/pdf"
                open(sys.argv[2], "wb").write(part.get_content())
                """,
                mails[0].path, attachment.path,
            ])
        let folderFile = try #require(world.delivered().first)
        #expect(try Data(contentsOf: attachment) == Data(contentsOf: folderFile))
        #expect(try PipelineTests.labels(attachment) == ["PAGE-1", "PAGE-2"])

        let rows = try await world.store.deliveries(messageID: message.id)
        #expect(rows.count == 2 && rows.allSatisfy { $0.state == .delivered })
        #expect(rows.first { $0.destination.hasPrefix("mailto:") }?.target.contains("queued as") == true)
        // Done with: the outbox keeps nothing.
        #expect(!FileManager.default.fileExists(atPath: pipeline.deliverer.outbox.folder(rows[0].messageID).path))
    }

    @Test func temporaryFailuresBackOffThenDeliver() async throws {
        let world = try PipelineTests.World()
        let clock = TestClock()
        let metrics = Metrics()
        let refused = Self.pipeline(world, smtpPort: Self.closedPort(), clock: clock, metrics: metrics)
        let directive = try await Self.directive(world, to: ["mailto:bob@example.com"])
        let message = try Self.scan(world, directive)
        _ = try await refused.process(message)
        let queue = DeliveryQueue(deliverer: refused.deliverer, logger: refused.logger)
        #expect(await queue.runDue() == 1)
        var row = try #require(try await world.store.deliveries(messageID: message.id).first)
        #expect(row.state == .queued && row.attempts == 1)
        #expect(row.lastError?.isEmpty == false)
        // The first retry comes after about five minutes (±20 %), the second after about ten.
        let first = try #require(row.nextAttemptAt).timeIntervalSince(clock.now)
        #expect(first >= 240 && first <= 360)
        clock.advance(200)
        #expect(await queue.runDue() == 0)
        clock.advance(first)
        #expect(await queue.runDue() == 1)
        row = try #require(try await world.store.deliveries(messageID: message.id).first)
        let second = try #require(row.nextAttemptAt).timeIntervalSince(clock.now)
        #expect(row.attempts == 2 && second >= 480 && second <= 720)

        // The smarthost is back (another process, same queue): the next attempt delivers.
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let working = Self.pipeline(world, smtpPort: peer.port, clock: clock, metrics: metrics)
        clock.advance(second)
        #expect(await DeliveryQueue(deliverer: working.deliverer, logger: working.logger).runDue() == 1)
        row = try #require(try await world.store.deliveries(messageID: message.id).first)
        #expect(row.state == .delivered && row.attempts == 3)
        #expect(peer.files("eml").count == 1)
        let events = try await world.store.journal(messageID: message.id).map(\.event)
        #expect(events.filter { $0 == "deferred" }.count == 2 && events.contains("delivered"))
        #expect(metrics.snapshot.deliveryAttempts == [.document: [.retry: 2, .delivered: 1]])
    }

    @Test func aPermanentRefusalIsADeadLetterAndTheSenderAndOwnerAreTold() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost(["--rcpt-reply", "bob@example.com=550 5.1.1 <bob@example.com>: user unknown"])
        defer { peer.stop() }
        let clock = TestClock()
        let metrics = Metrics()
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: clock, metrics: metrics)
        let directive = try await Self.directive(world, to: ["mailto:bob@example.com"])
        let message = try Self.scan(world, directive)
        _ = try await pipeline.process(message)
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        #expect(await queue.runDue() == 1)  // the document: refused for good
        #expect(metrics.snapshot.deliveryAttempts == [.document: [.dead: 1]])
        let rows = try await world.store.deliveries(messageID: message.id)
        let dead = try #require(rows.first { $0.kind == .document })
        #expect(dead.state == .dead && dead.attempts == 1)
        #expect(dead.lastError?.contains("550") == true)
        // Two notices: the sender (scanner@office.example.com is in a configured domain) and the owner.
        let notices = rows.filter { $0.kind == .notice }
        #expect(Set(notices.map(\.destination)) == ["mailto:scanner@office.example.com", "mailto:ap@office.example.com"])
        #expect(await queue.runDue() == 2)
        #expect(metrics.snapshot.deliveryAttempts == [.document: [.dead: 1], .notice: [.delivered: 2]])
        let sent = try peer.files("json").map { try peer.json($0) }
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0["mail_from"] as? String == "<>" })  // the null sender: nothing answers a notice
        let text = try String(contentsOf: try #require(peer.files("eml").first), encoding: .utf8)
        #expect(text.contains("Auto-Submitted: auto-replied"))
        #expect(text.contains("user unknown"))
        #expect(text.contains("waybill queue retry \(dead.id)"))
        // The dead letter keeps its document for a retry; an operator's retry queues it again.
        #expect(FileManager.default.fileExists(atPath: dead.document))
        #expect(try await world.store.retryDelivery(dead.id, at: clock.now, journal: [])?.state == .queued)
    }

    @Test func retriesGiveUpAfterTheGiveUpTime() async throws {
        let world = try PipelineTests.World()
        let clock = TestClock()
        let pipeline = Self.pipeline(world, smtpPort: Self.closedPort(), clock: clock)
        let directive = try await Self.directive(world, to: ["mailto:bob@example.com"])
        let message = try Self.scan(world, directive)
        let start = clock.now
        _ = try await pipeline.process(message)
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        var attempts = 0
        while attempts < 100 {
            let row = try #require(try await world.store.deliveries(messageID: message.id).first { $0.kind == .document })
            guard row.state == .queued, let next = row.nextAttemptAt else { break }
            clock.set(max(clock.now, next))
            attempts += await queue.runDue()
        }
        let row = try #require(try await world.store.deliveries(messageID: message.id).first { $0.kind == .document })
        #expect(row.state == .dead)
        #expect(row.lastError?.contains("gave up after 4 days") == true)
        // Backoff doubling to the 4-hour cap: about thirty attempts in four days, not hundreds.
        #expect(attempts >= 20 && attempts <= 40)
        let lastAttempt = try #require(row.lastAttemptAt)
        #expect(abs(lastAttempt.timeIntervalSince(start) - 4 * 86400) < 1)
    }

    @Test func webhooksAreSignedAndRetriedWithTheSameIdempotencyKey() async throws {
        let world = try PipelineTests.World()
        let secret = "0123456789abcdef0123456789abcdef"
        let receiver = try await Peer(script: "webhook_receiver.py", arguments: ["--secret", secret, "--statuses", "503,200"])
        defer { receiver.stop() }
        let clock = TestClock()
        let webhooks = WebhookTransport(signer: WebhookSigner(secret: Array(secret.utf8)), timeout: .seconds(30))
        let result: Result<IngestMessage, any Error>
        do {
            result = .success(try await Self.postTwice(world, receiver: receiver, webhooks: webhooks, clock: clock))
        } catch {
            result = .failure(error)
        }
        try await webhooks.shutdown()
        let message = try result.get()
        let directiveID = try #require(try await world.store.jobs(messageID: message.id).first).directive
        let requests = try receiver.files("json").filter { $0.lastPathComponent.hasPrefix("request-") }.map { try receiver.json($0) }
        #expect(requests.count == 2)
        let keys = requests.compactMap { ($0["headers"] as? [String: Any])?.first { $0.key.lowercased() == "idempotency-key" }?.value as? String }
        #expect(keys.count == 2 && Set(keys).count == 1)
        #expect(requests.allSatisfy { $0["signature_valid"] as? Bool == true })
        let metadata = try #require(requests.last?["metadata"] as? [String: Any])
        #expect(metadata["message"] as? String == message.id)
        #expect(metadata["pages"] as? Int == 2)
        #expect((metadata["directive"] as? [String: Any])?["id"] as? String == directiveID.display)
    }

    /// A scan to the receiver: the first post answered 503, the retry at its time 200.
    static func postTwice(_ world: PipelineTests.World, receiver: Peer, webhooks: WebhookTransport, clock: TestClock) async throws
        -> IngestMessage
    {
        let pipeline = Self.pipeline(world, smtpPort: nil, webhooks: webhooks, clock: clock)
        let directive = try await Self.directive(world, to: ["http://127.0.0.1:\(receiver.port)/in"])
        let message = try Self.scan(world, directive)
        _ = try await pipeline.process(message)
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        #expect(await queue.runDue() == 1)
        var row = try #require(try await world.store.deliveries(messageID: message.id).first)
        #expect(row.state == .queued && row.lastError?.contains("503") == true)
        clock.set(try #require(row.nextAttemptAt))
        #expect(await queue.runDue() == 1)
        row = try #require(try await world.store.deliveries(messageID: message.id).first)
        #expect(row.state == .delivered && row.target == "HTTP 200")
        return message
    }

    @Test func quarantineNoticesReachOnlySendersThatMayBeTold() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let clock = TestClock()
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: clock)
        // No sheet in the scan: quarantined as no-sheet.
        var local = try world.mail([try world.scan(["doc:PAGE-1"])])
        local.sender = "scanner@office.example.com"
        var outsider = try world.mail([try world.scan(["doc:PAGE-1"])])
        outsider.sender = "someone@elsewhere.example"
        var loggedIn = try world.mail([try world.scan(["doc:PAGE-1"])])
        loggedIn.sender = "visitor@elsewhere.example"
        loggedIn.authenticatedUser = "visitor"
        var null = try world.mail([try world.scan(["doc:PAGE-1"])])
        null.sender = ""
        for message in [local, outsider, loggedIn, null] {
            guard case .quarantined("no-sheet", _, _) = try await pipeline.process(message) else {
                Issue.record("not quarantined as no-sheet")
                continue
            }
        }
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        #expect(await queue.runDue() == 2)
        let recipients = try peer.files("json").flatMap { try peer.json($0)["rcpt_tos"] as? [String] ?? [] }
        #expect(Set(recipients) == ["scanner@office.example.com", "visitor@elsewhere.example"])
        let text = try peer.files("eml").map { try String(contentsOf: $0, encoding: .utf8) }.joined()
        #expect(text.contains("No routing sheet was found"))
        #expect(text.contains("X-Waybill-Notice: quarantined"))
        // Running a quarantined message again sends no second notice.
        _ = try await pipeline.process(local, again: true)
        #expect(await queue.runDue() == 0)
    }

    @Test func automaticMailGetsNoNotice() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: TestClock())
        var message = try world.mail([try world.scan(["doc:PAGE-1"])])
        // The same message with Auto-Submitted added: a vacation reply or a bounce, say.
        let original = try Data(contentsOf: message.file)
        let automatic = world.directory.appendingPathComponent("automatic.eml")
        try (Data("Auto-Submitted: auto-replied\r\n".utf8) + original).write(to: automatic)
        message = IngestMessage(id: "AUTO1", file: automatic, sender: "scanner@office.example.com", recipients: ["scan@localhost"], receivedAt: Date())
        _ = try await pipeline.process(message)
        #expect(try await world.store.deliveries(messageID: "AUTO1").isEmpty)
    }

    @Test func confirmationGoesToTheOwnerWhenEveryDestinationIsDone() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let clock = TestClock()
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: clock)
        let directive = try await Self.directive(world, to: ["folder:archive/inbox", "mailto:bob@example.com"], confirm: true)
        let message = try Self.scan(world, directive)
        _ = try await pipeline.process(message)
        let queue = DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger)
        #expect(await queue.runDue() == 1)  // the mail; then the confirmation is queued
        #expect(await queue.runDue() == 1)  // the confirmation
        let sent = try peer.files("json").map { try peer.json($0)["rcpt_tos"] as? [String] ?? [] }
        #expect(sent == [["bob@example.com"], ["ap@office.example.com"]])
        let confirmation = try String(contentsOf: try #require(peer.files("eml").last), encoding: .utf8)
        #expect(confirmation.contains("were delivered"))
    }

    /// The configured rules of these tests, checked as `serve` checks them.
    static func rules(_ world: PipelineTests.World, _ json: String, oneOff: Bool = false) throws -> RoutingRules {
        try RoutingRules(
            configured: try RoutingRule.rules(fromSetting: json), domains: ["office.example.com"], oneOffAddresses: oneOff,
            policy: DestinationPolicy(folderRoots: ["archive": world.archive.path], webhookPrefixes: []))
    }

    @Test func aRelayRuleSendsTheMessageAsItIsFromItsSender() async throws {
        let world = try PipelineTests.World()
        let peer = try await Self.smarthost()
        defer { peer.stop() }
        let rules = try Self.rules(world, #"[{"match": "*@partner.example", "authenticated": true, "action": "relay"}]"#)
        let pipeline = Self.pipeline(world, smtpPort: peer.port, clock: TestClock(), rules: rules)
        var message = try world.mail([try world.scan(["doc:PAGE-1"])], to: "colleague@partner.example")
        // Not logged in: the rule does not apply and nothing else accepts the address.
        guard case .quarantined("no-rule", _, _) = try await pipeline.process(message) else {
            Issue.record("relayed for an unauthenticated client")
            return
        }
        message.id += "B"
        message.authenticatedUser = "alice"
        guard case .delivered(0, _, _, 1) = try await pipeline.process(message) else {
            Issue.record("not queued for relaying")
            return
        }
        // The relay, and the notice that told the (local) sender why the first attempt was refused.
        #expect(await DeliveryQueue(deliverer: pipeline.deliverer, logger: pipeline.logger).runDue() == 2)
        let sent = try peer.files("json").map { ($0, try peer.json($0)) }
        let relayed = try #require(sent.first { $0.1["rcpt_tos"] as? [String] == ["colleague@partner.example"] })
        #expect(relayed.1["mail_from"] as? String == "scanner@office.example.com")
        #expect(sent.contains { $0.1["rcpt_tos"] as? [String] == ["scanner@office.example.com"] && $0.1["mail_from"] as? String == "<>" })
        // The very bytes that came in.
        let received = try Data(contentsOf: relayed.0.deletingPathExtension().appendingPathExtension("eml"))
        #expect(received == (try Data(contentsOf: message.file)))
    }

    @Test func aFailoverFilesUnsheetedScansInsteadOfQuarantiningThem() async throws {
        let world = try PipelineTests.World()
        let rules = try Self.rules(
            world, #"[{"match": "scan@office.example.com", "action": "search", "failover": "deliver:folder:archive/unsorted"}]"#)
        let pipeline = Self.pipeline(world, smtpPort: nil, clock: TestClock(), rules: rules)
        let message = try world.mail([try world.scan(["doc:PAGE-U1", "doc:PAGE-U2"])], to: "scan@office.example.com")
        guard case .delivered(_, let files, 2, 0) = try await pipeline.process(message) else {
            Issue.record("the failover did not deliver")
            return
        }
        #expect(files.count == 1)
        let filed = try #require(world.delivered("unsorted").first)
        #expect(try PipelineTests.labels(filed) == ["PAGE-U1", "PAGE-U2"])
        let events = try await world.store.journal(messageID: message.id).map(\.event)
        #expect(events.contains("failover") && !events.contains("quarantined"))
    }

    @Test func aOneOffAddressNamesItsFolder() async throws {
        let world = try PipelineTests.World()
        let rules = try Self.rules(world, "[]", oneOff: true)
        let pipeline = Self.pipeline(world, smtpPort: nil, clock: TestClock(), rules: rules)
        let message = try world.mail([try world.scan(["doc:PAGE-O1"])], to: "folder.archive.invoices.2026@office.example.com")
        guard case .delivered(_, let files, 1, 0) = try await pipeline.process(message) else {
            Issue.record("not delivered to the one-off folder")
            return
        }
        #expect(files.count == 1)
        #expect(try PipelineTests.labels(try #require(world.delivered("invoices/2026").first)) == ["PAGE-O1"])
        // A root that does not exist is refused, never created.
        let wrong = try world.mail([try world.scan(["doc:PAGE-O2"])], to: "folder.secret.x@office.example.com")
        guard case .quarantined("no-rule", _, _) = try await pipeline.process(wrong) else {
            Issue.record("an unknown root was accepted")
            return
        }
    }
}
