import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillScan
import WaybillSheets
import WaybillStore
import WaybillWeb

/// The admin API (quarantine, queue, journal) and "my activity" in process, over the real
/// pipeline: scans made by the fixture generator, mail built by Python's email package, a real
/// SQLite store and data directory, the desks `serve` uses.
@Suite struct OperatorAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A data directory with users alice and bob (users) and root (admin), a token each, an
    /// `archive` folder root, and the pipeline and desks over them. Mail deliveries wait in the
    /// queue (no smarthost) and are given up at their first failure, so tests make dead letters.
    struct World {
        let directory: URL
        let data: DataDirectory
        let store: SQLiteDirectiveStore
        let keys: SigningKeys
        let pipeline: Pipeline
        let configuration: WebConfiguration
        let wakes = Wakes()
        var alice = ""
        var bob = ""
        var admin = ""
        var archive: URL { directory.appendingPathComponent("archive") }

        final class Wakes: Sendable {
            let count = Mutex(0)
            var value: Int { count.withLock { $0 } }
        }

        init(keepScans: TimeInterval = 0) async throws {
            directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-ops-\(UUID().uuidString)")
            data = DataDirectory(path: directory.path)
            store = try data.openStore()
            keys = try data.loadOrCreateKeys()
            let wakes = self.wakes
            var pipeline = Pipeline(
                store: store, dataDirectory: data, rules: RoutingRules(configured: []),
                folders: FolderTransport(resolver: FolderResolver(roots: ["archive": directory.appendingPathComponent("archive").path])),
                delivery: DeliveryOptions(schedule: RetrySchedule(firstDelay: .seconds(60), giveUp: .zero), notices: false),
                onQueued: { wakes.count.withLock { $0 += 1 } })
            pipeline.keepScans = keepScans
            self.pipeline = pipeline
            let now = Date()
            var tokens: [String] = []
            for (name, role) in [("alice@example.com", UserRole.user), ("bob@example.com", .user), ("root@example.com", .admin)] {
                let hash = PasswordHash.make(password: "correct horse", iterations: 1_000).encoded
                try await store.addUser(User(name: name, role: role, passwordHash: hash, createdAt: now))
                let token = APIToken.generate()
                _ = try await store.addToken(digest: APIToken.digest(of: token), user: name, at: now)
                tokens.append(token)
            }
            (alice, bob, admin) = (tokens[0], tokens[1], tokens[2])
            let template = try TemplateLocator(
                explicitDirectory: Self.templates, environment: [:], executablePath: nil
            ).locate(name: "standard", paper: .letter)
            configuration = WebConfiguration(
                store: store, keys: keys,
                policy: DestinationPolicy(folderRoots: ["archive": directory.appendingPathComponent("archive").path], webhookPrefixes: []),
                template: { template }, scanAddress: "scan@example.com",
                quarantine: QuarantineDesk(pipeline: pipeline), queue: QueueDesk(pipeline: pipeline))
        }

        static let templates = OperatorAPITests.root.appendingPathComponent("Templates").path

        var app: Application<RouterResponder<WebRequestContext>> { Application(router: WebApp.router(configuration)) }

        func directive(owner: String = "alice@example.com", destination: String = "folder:archive/inbox", maxUses: Int? = nil)
            async throws -> Directive
        {
            var draft = DirectiveDraft(title: "Accounts payable", owner: owner, destinations: [destination])
            draft.maxUses = maxUses
            let directive = try draft.validated(id: .random(), now: Date(), policy: configuration.policy)
            try await store.insert(directive)
            return directive
        }

        /// The directive's routing sheet as a PDF file, as `waybill sheet` renders it.
        func sheet(_ directive: Directive) throws -> String {
            let template = try TemplateLocator(explicitDirectory: Self.templates, environment: [:], executablePath: nil)
                .locate(name: "standard", paper: .letter)
            let content = SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@localhost")
            let path = directory.appendingPathComponent("sheet-\(UUID().uuidString).pdf").path
            try SheetRenderer().renderPDF([content], template: template).write(to: URL(fileURLWithPath: path))
            return path
        }

        /// A scanned batch from the fixture generator (`sheet:PATH`, `doc:LABEL`, `blank`).
        func scan(_ items: [String]) throws -> String {
            let path = directory.appendingPathComponent("scan-\(UUID().uuidString).pdf").path
            try OperatorAPITests.run(
                "/usr/bin/python3", [OperatorAPITests.root.appendingPathComponent("Fixtures/make_batch.py").path, path] + items)
            return path
        }

        /// A message as a scanner sends it, run through the pipeline as `serve` would.
        func route(_ attachments: [String], from sender: String = "scanner@office.example.com") async throws -> (IngestMessage, IngestOutcome) {
            let id = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20))
            let path = directory.appendingPathComponent("\(id).eml").path
            let script = """
                import sys, email.message
                msg = email.message.EmailMessage()
                msg["From"] = sys.argv[1]; msg["To"] = "scan@localhost"; msg["Subject"] = "Scan from MFP"
                msg.set_content("Scanned document attached.")
                for path in sys.argv[3:]:
                    msg.add_attachment(open(path, "rb").read(), maintype="application", subtype="octet-stream",
                                       filename=path.split("/")[-1])
                open(sys.argv[2], "wb").write(msg.as_bytes().replace(b"\\n", b"\\r\\n"))
                """
            try OperatorAPITests.run("/usr/bin/python3", ["-c", script, sender, path] + attachments)
            let message = IngestMessage(
                id: id, file: URL(fileURLWithPath: path), sender: sender, recipients: ["scan@localhost"],
                receivedAt: Date())
            return (message, try await pipeline.process(message))
        }

        /// A message refused for having no routing sheet: held in quarantine.
        func held(_ labels: [String]) async throws -> String {
            let (message, outcome) = try await route([try scan(labels.map { "doc:" + $0 })])
            #expect(outcome.name == "quarantined:no-sheet")
            return message.id
        }

        func delivered(_ folder: String = "inbox") -> [URL] {
            let url = archive.appendingPathComponent(folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
                .map { url.appendingPathComponent($0) }
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw WaybillError(.ioError, "\(executable) failed: \(text)") }
    }

    /// The Code 128 labels on a PDF's pages, in order: which document pages it holds.
    static func labels(_ url: URL) throws -> [String] {
        var labels: [String] = []
        try ScanDecoder(keys: SigningKeys(keys: [])).decode(path: url.path) { page in
            labels += page.barcodes.filter { $0.text.hasPrefix("PAGE-") }.map(\.text)
        }
        return labels
    }

    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, body: String? = nil
    ) async throws -> WebAppTests.Reply {
        try await WebAppTests.call(client, method, uri, token: token, body: body)
    }

    static func events(_ reply: WebAppTests.Reply) -> [String] {
        (reply.json["journal"] as? [[String: Any]] ?? []).compactMap { $0["event"] as? String }
    }

    // MARK: Quarantine

    @Test func quarantineListsShowsAndRendersPagesOfAHeldScan() async throws {
        let world = try await World()
        let id = try await world.held(["PAGE-Q1", "PAGE-Q2"])
        try await world.app.test(.router) { client in
            let list = try await Self.call(client, .get, "/api/quarantine", token: world.admin)
            #expect(list.status == .ok)
            #expect(list.array.map { $0["id"] as? String } == [id])
            #expect(list.array.first?["reason"] as? String == "no-sheet")
            #expect(list.array.first?["state"] as? String == "held")
            #expect(list.array.first?["subject"] as? String == "Scan from MFP")

            let shown = try await Self.call(client, .get, "/api/quarantine/\(id)", token: world.admin)
            #expect(shown.status == .ok)
            #expect((shown.json["entry"] as? [String: Any])?["id"] as? String == id)
            #expect(Self.events(shown).contains("quarantined"))

            // Page n is the scan's page n, read back by the barcode scanner; 150 dpi by default.
            for (number, label) in [(1, "PAGE-Q1"), (2, "PAGE-Q2")] {
                let page = try await Self.call(client, .get, "/api/quarantine/\(id)/pages/\(number).png", token: world.admin)
                #expect(page.status == .ok)
                #expect(page.headers[.contentType] == "image/png")
                #expect(page.data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
                let image = try ImageReaders.png(page.data)
                #expect(image.width == 1275 && image.height == 1650)  // Letter at 150 dpi.
                #expect(try BarcodeScanner().scan(image).map(\.text).contains(label))
            }
            let small = try await Self.call(client, .get, "/api/quarantine/\(id)/pages/2.png?dpi=72", token: world.admin)
            let smallImage = try ImageReaders.png(small.data)
            #expect(smallImage.width == 612 && smallImage.height == 792)
            let past = try await Self.call(client, .get, "/api/quarantine/\(id)/pages/3.png", token: world.admin)
            #expect(past.status == .notFound)
            #expect(past.code == "page-not-found")
            #expect(try await Self.call(client, .get, "/api/quarantine/\(id)/pages/0.png", token: world.admin).status == .notFound)
            #expect(try await Self.call(client, .get, "/api/quarantine/\(id)/pages/1.jpg", token: world.admin).status == .notFound)
            let tooFine = try await Self.call(client, .get, "/api/quarantine/\(id)/pages/1.png?dpi=2400", token: world.admin)
            #expect(tooFine.status == .badRequest)
            let unknown = try await Self.call(client, .get, "/api/quarantine/nosuchmessage", token: world.admin)
            #expect(unknown.status == .notFound)
            #expect(unknown.code == "unknown-message")
            #expect(try await Self.call(client, .get, "/api/quarantine/nosuchmessage/pages/1.png", token: world.admin).status == .notFound)
        }
    }

    /// A scan poppler cannot open is held as `unreadable-attachment`; its pages are a 422 with
    /// the decoder's code, not a server error.
    @Test func anUnreadableScansPagesAre422() async throws {
        let world = try await World()
        let junk = world.directory.appendingPathComponent("broken.pdf")
        try FileManager.default.createDirectory(at: world.directory, withIntermediateDirectories: true)
        try Data("%PDF-1.4\n1 0 obj garbage".utf8).write(to: junk)
        let (message, outcome) = try await world.route([junk.path])
        #expect(outcome.name == "quarantined:unreadable-attachment")
        try await world.app.test(.router) { client in
            let page = try await Self.call(client, .get, "/api/quarantine/\(message.id)/pages/1.png", token: world.admin)
            #expect(page.status == .unprocessableContent)
            #expect(page.code == "unreadable-document")
        }
    }

    /// The acceptance path: a scan without a sheet, rerouted by an admin to a directive with a
    /// folder destination, lands in that folder with every page, and the journal says who did it.
    @Test func rerouteDeliversEveryPageToTheDirectivesFolder() async throws {
        let world = try await World()
        let directive = try await world.directive()
        let id = try await world.held(["PAGE-R1", "PAGE-R2"])
        let original = world.pipeline.quarantinedFile(id)
        #expect(FileManager.default.fileExists(atPath: original.path))
        try await world.app.test(.router) { client in
            let badBody = try await Self.call(client, .post, "/api/quarantine/\(id)/reroute", token: world.admin, body: #"{"to": "x"}"#)
            #expect(badBody.status == .badRequest)
            let badID = try await Self.call(
                client, .post, "/api/quarantine/\(id)/reroute", token: world.admin, body: #"{"directive": "nope"}"#)
            #expect(badID.code == "invalid-directive-id")
            let unknown = try await Self.call(
                client, .post, "/api/quarantine/\(id)/reroute", token: world.admin,
                body: #"{"directive": "\#(DirectiveID.random().display)"}"#)
            #expect(unknown.status == .notFound)
            #expect(unknown.code == "unknown-directive")
            #expect(world.delivered().isEmpty)

            let reply = try await Self.call(
                client, .post, "/api/quarantine/\(id)/reroute", token: world.admin,
                body: #"{"directive": "\#(directive.id.display)"}"#)
            #expect(reply.status == .ok, "\(reply.text)")
            #expect((reply.json["entry"] as? [String: Any])?["state"] as? String == "rerouted")
            #expect(reply.json["jobs"] as? Int == 1)
            #expect(reply.json["queued"] as? Int == 0)
            let files = world.delivered()
            #expect(files.count == 1)
            #expect((reply.json["files"] as? [String])?.map { URL(fileURLWithPath: $0).lastPathComponent } == files.map(\.lastPathComponent))
            #expect(try Self.labels(try #require(files.first)) == ["PAGE-R1", "PAGE-R2"])
            #expect(!FileManager.default.fileExists(atPath: original.path))
            #expect(try await world.store.quarantineEntry(id)?.state == .rerouted)
            #expect(try await world.store.message(id)?.state == .done)

            let journal = try await world.store.journal(messageID: id)
            #expect(journal.contains { $0.event == "rerouted" && $0.actor == "web:root@example.com" && $0.detail.contains(directive.id.display) })
            #expect(journal.contains { $0.event == "delivered" && $0.actor == "web:root@example.com" })

            let again = try await Self.call(
                client, .post, "/api/quarantine/\(id)/reroute", token: world.admin,
                body: #"{"directive": "\#(directive.id.display)"}"#)
            #expect(again.status == .conflict)
            #expect(again.code == "invalid-quarantine-action")
            #expect(world.delivered().count == 1)
            #expect(try await Self.call(client, .get, "/api/quarantine", token: world.admin).array.isEmpty)
            let all = try await Self.call(client, .get, "/api/quarantine?all=true", token: world.admin).array
            #expect(all.map { $0["state"] as? String } == ["rerouted"])
        }
    }

    /// Release runs the rules again: refused while the cause stands (still held, 409), delivered
    /// once the directive's owner has fixed it.
    @Test func releaseDeliversOnceTheCauseIsFixed() async throws {
        let world = try await World()
        let directive = try await world.directive(maxUses: 1)
        let (first, used) = try await world.route([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-U1"])])
        #expect(used.name == "delivered")
        let (message, outcome) = try await world.route([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-U2"])])
        #expect(outcome.name == "quarantined:used-up")
        let id = message.id
        try await world.app.test(.router) { client in
            let refused = try await Self.call(client, .post, "/api/quarantine/\(id)/release", token: world.admin)
            #expect(refused.status == .conflict)
            #expect(refused.code == "still-quarantined")
            #expect(try await world.store.quarantineEntry(id)?.state == .held)
            #expect(FileManager.default.fileExists(atPath: world.pipeline.quarantinedFile(id).path))

            let patched = try await Self.call(
                client, .patch, "/api/directives/\(directive.id.rawValue)", token: world.alice, body: #"{"max_uses": 5}"#)
            #expect(patched.status == .ok)
            let released = try await Self.call(client, .post, "/api/quarantine/\(id)/release", token: world.admin)
            #expect(released.status == .ok, "\(released.text)")
            #expect((released.json["entry"] as? [String: Any])?["state"] as? String == "released")
            let files = world.delivered()
            #expect(files.count == 2)
            #expect(Set(try files.flatMap(Self.labels)) == ["PAGE-U1", "PAGE-U2"])
            #expect(!FileManager.default.fileExists(atPath: world.pipeline.quarantinedFile(id).path))
            let journal = try await world.store.journal(messageID: id)
            #expect(journal.contains { $0.event == "released" && $0.actor == "web:root@example.com" })
            #expect(try await Self.call(client, .post, "/api/quarantine/\(id)/release", token: world.admin).status == .conflict)
            // The first message was never quarantined.
            #expect(try await Self.call(client, .post, "/api/quarantine/\(first.id)/release", token: world.admin).code == "unknown-message")
        }
    }

    @Test func deleteRemovesTheOriginalAndTheJournalSaysWho() async throws {
        let world = try await World()
        let id = try await world.held(["PAGE-D1"])
        let original = world.pipeline.quarantinedFile(id)
        try await world.app.test(.router) { client in
            let reply = try await Self.call(client, .delete, "/api/quarantine/\(id)", token: world.admin)
            #expect(reply.status == .ok)
            #expect(reply.json["state"] as? String == "deleted")
            #expect(!FileManager.default.fileExists(atPath: original.path))
            let last = try #require(try await world.store.journal(messageID: id).last)
            #expect(last.event == "deleted")
            #expect(last.actor == "web:root@example.com")
            let shown = try await Self.call(client, .get, "/api/quarantine/\(id)", token: world.admin)
            #expect(Self.events(shown).last == "deleted")
            let again = try await Self.call(client, .delete, "/api/quarantine/\(id)", token: world.admin)
            #expect(again.status == .conflict)
            #expect(again.code == "invalid-quarantine-action")
            let page = try await Self.call(client, .get, "/api/quarantine/\(id)/pages/1.png", token: world.admin)
            #expect(page.status == .notFound)
            #expect(try await Self.call(client, .get, "/api/quarantine", token: world.admin).array.isEmpty)
        }
    }

    /// Every admin route: 401 without a token, 403 `forbidden` for a user; nothing changes.
    @Test func adminRoutesRefuseUsersAndStrangers() async throws {
        let world = try await World()
        let directive = try await world.directive(destination: "mailto:ap@example.com")
        let id = try await world.held(["PAGE-P1"])
        let (mail, _) = try await world.route([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-P2"])])
        let row = try #require(try await world.store.deliveries(messageID: mail.id).first)
        #expect(row.state == .queued)
        try await world.app.test(.router) { client in
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/api/quarantine", nil),
                (.get, "/api/quarantine?all=true", nil),
                (.get, "/api/quarantine/\(id)", nil),
                (.get, "/api/quarantine/\(id)/pages/1.png", nil),
                (.post, "/api/quarantine/\(id)/reroute", #"{"directive": "\#(directive.id.display)"}"#),
                (.post, "/api/quarantine/\(id)/release", nil),
                (.delete, "/api/quarantine/\(id)", nil),
                (.get, "/api/queue", nil),
                (.get, "/api/queue/\(row.id)", nil),
                (.post, "/api/queue/\(row.id)/retry", nil),
                (.post, "/api/queue/\(row.id)/purge", nil),
                (.get, "/api/journal", nil),
                (.get, "/api/journal?message=\(id)", nil),
                (.get, "/api/messages?user=bob@example.com", nil),
            ]
            for (method, uri, body) in routes {
                let stranger = try await Self.call(client, method, uri, body: body)
                #expect(stranger.status == .unauthorized, "\(method) \(uri)")
                #expect(stranger.code == "authentication-required")
                let user = try await Self.call(client, method, uri, token: world.alice, body: body)
                #expect(user.status == .forbidden, "\(method) \(uri): \(user.text)")
                #expect(user.code == "forbidden")
            }
            #expect(try await Self.call(client, .get, "/api/messages", token: nil).status == .unauthorized)
            #expect(try await world.store.quarantineEntry(id)?.state == .held)
            #expect(FileManager.default.fileExists(atPath: world.pipeline.quarantinedFile(id).path))
            #expect(try await world.store.delivery(row.id) == row)
            #expect(world.wakes.value == 1, "only the pipeline's own queueing woke the queue")
        }
    }

    // MARK: Queue

    @Test func queueListsRetriesAndPurgesRealRows() async throws {
        let world = try await World()
        let directive = try await world.directive(destination: "mailto:ap@example.com")
        let (waiting, _) = try await world.route([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-M1"])])
        let (failed, _) = try await world.route([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-M2"])])
        let queued = try #require(try await world.store.deliveries(messageID: waiting.id).first)
        let row = try #require(try await world.store.deliveries(messageID: failed.id).first)
        // No smarthost and no time to retry: the first attempt makes a dead letter.
        _ = try await world.pipeline.deliverer.attempt(row.id)
        let dead = try #require(try await world.store.delivery(row.id))
        #expect(queued.state == .queued)
        #expect(dead.state == .dead)
        let wakesBefore = world.wakes.value
        try await world.app.test(.router) { client in
            let list = try await Self.call(client, .get, "/api/queue", token: world.admin)
            #expect(list.status == .ok)
            #expect(list.array.compactMap { $0["id"] as? Int64 } == [queued.id, dead.id])
            #expect(list.array.map { $0["state"] as? String } == ["queued", "dead"])
            #expect(list.array.last?["last_error"] is String)
            #expect(list.array.last?["attempts"] as? Int == 1)
            let onlyDead = try await Self.call(client, .get, "/api/queue?state=dead", token: world.admin)
            #expect(onlyDead.array.compactMap { $0["id"] as? Int64 } == [dead.id])
            let limited = try await Self.call(client, .get, "/api/queue?state=queued,dead&limit=1", token: world.admin)
            #expect(limited.array.compactMap { $0["id"] as? Int64 } == [queued.id])
            #expect(try await Self.call(client, .get, "/api/queue?state=delivered", token: world.admin).array.isEmpty)
            #expect(try await Self.call(client, .get, "/api/queue?state=lost", token: world.admin).status == .badRequest)
            #expect(try await Self.call(client, .get, "/api/queue?limit=0", token: world.admin).status == .badRequest)

            let shown = try await Self.call(client, .get, "/api/queue/\(dead.id)", token: world.admin)
            #expect((shown.json["delivery"] as? [String: Any])?["state"] as? String == "dead")
            #expect(Self.events(shown).contains("dead-letter"))
            #expect(try await Self.call(client, .get, "/api/queue/99999", token: world.admin).code == "unknown-delivery")

            // Retry: queued again, due now, the queue woken, the journal says who.
            let retried = try await Self.call(client, .post, "/api/queue/\(dead.id)/retry", token: world.admin)
            #expect(retried.status == .ok)
            #expect(retried.json["state"] as? String == "queued")
            #expect(retried.json["next_attempt"] is String)
            #expect(world.wakes.value == wakesBefore + 1)
            let row = try #require(try await world.store.delivery(dead.id))
            #expect(row.state == .queued)
            #expect(row.retrySince > dead.retrySince)
            let line = try #require(try await world.store.journal(messageID: failed.id).last)
            #expect(line.event == "retry" && line.actor == "web:root@example.com")

            // Purge: never attempted again; the document leaves the outbox with its last row.
            let outbox = Outbox(dataDirectory: world.data).folder(waiting.id)
            #expect(FileManager.default.fileExists(atPath: outbox.path))
            let purged = try await Self.call(client, .post, "/api/queue/\(queued.id)/purge", token: world.admin)
            #expect(purged.status == .ok)
            #expect(purged.json["state"] as? String == "purged")
            #expect(try await world.store.delivery(queued.id)?.state == .purged)
            #expect(!FileManager.default.fileExists(atPath: outbox.path))
            #expect(try await world.store.journal(messageID: waiting.id).last?.event == "purged")
            let late = try await Self.call(client, .post, "/api/queue/\(queued.id)/retry", token: world.admin)
            #expect(late.status == .conflict)
            #expect(late.code == "invalid-queue-action")
            #expect(try await Self.call(client, .post, "/api/queue/\(queued.id)/purge", token: world.admin).status == .conflict)
            #expect(world.wakes.value == wakesBefore + 1, "a refused retry wakes nothing")
        }
    }

    // MARK: Journal and activity

    @Test func journalFiltersByMessageDirectiveOwnerActorAndTime() async throws {
        let world = try await World()
        let alices = try await world.directive()
        let bobs = try await world.directive(owner: "bob@example.com", destination: "folder:archive/bob")
        let (a, _) = try await world.route([try world.scan(["sheet:" + world.sheet(alices), "doc:PAGE-J1"])])
        let (b, _) = try await world.route([try world.scan(["sheet:" + world.sheet(bobs), "doc:PAGE-J2"])])
        let held = try await world.held(["PAGE-J3"])
        try await world.app.test(.router) { client in
            _ = try await Self.call(client, .delete, "/api/quarantine/\(held)", token: world.admin)
            func messages(_ query: String) async throws -> Set<String> {
                let reply = try await Self.call(client, .get, "/api/journal" + query, token: world.admin)
                #expect(reply.status == .ok, "\(query): \(reply.text)")
                return Set(reply.array.compactMap { $0["message"] as? String })
            }
            #expect(try await messages("") == [a.id, b.id, held])
            #expect(try await messages("?message=\(a.id)") == [a.id])
            #expect(try await messages("?directive=\(bobs.id.display)") == [b.id])
            #expect(try await messages("?user=alice@example.com") == [a.id])
            #expect(try await messages("?user=BOB@example.com") == [b.id])
            #expect(try await messages("?actor=web:root@example.com") == [held])
            #expect(try await messages("?user=alice@example.com&directive=\(bobs.id.display)").isEmpty)
            #expect(try await messages("?until=2000-01-01").isEmpty)
            #expect(try await messages("?since=2999-01-01T00:00:00Z").isEmpty)
            #expect(try await messages("?since=2000-01-01&until=2999-01-01&message=\(b.id)") == [b.id])

            // Newest first, as many as asked.
            let one = try await Self.call(client, .get, "/api/journal?limit=1", token: world.admin).array
            #expect(one.count == 1)
            #expect(one.first?["event"] as? String == "deleted")
            let lines = try await Self.call(client, .get, "/api/journal?message=\(a.id)", token: world.admin).array
            let sequences = lines.compactMap { $0["sequence"] as? Int64 }
            #expect(sequences == sequences.sorted(by: >))
            #expect(lines.count == (try await world.store.journal(messageID: a.id)).count)

            for bad in ["?since=yesterday", "?directive=nope", "?limit=5000"] {
                #expect(try await Self.call(client, .get, "/api/journal" + bad, token: world.admin).status == .badRequest, "\(bad)")
            }
        }
    }

    @Test func messagesShowEachUserTheirOwnActivity() async throws {
        let world = try await World()
        let alices = try await world.directive()
        let bobs = try await world.directive(owner: "bob@example.com", destination: "mailto:bob@example.com")
        let (a, _) = try await world.route([try world.scan(["sheet:" + world.sheet(alices), "doc:PAGE-A1"])])
        let (b, _) = try await world.route([try world.scan(["sheet:" + world.sheet(bobs), "doc:PAGE-B1"])])
        // One scan with both sheets: alice sees her job only, an admin both.
        let (both, _) = try await world.route([
            try world.scan(["sheet:" + world.sheet(alices), "doc:PAGE-A2", "sheet:" + world.sheet(bobs), "doc:PAGE-B2"])
        ])
        try await world.app.test(.router) { client in
            let mine = try await Self.call(client, .get, "/api/messages", token: world.alice)
            #expect(mine.status == .ok)
            #expect(mine.array.compactMap { $0["id"] as? String } == [both.id, a.id], "newest first")
            let first = try #require(mine.array.last)
            #expect(first["state"] as? String == "done")
            #expect(first["outcome"] as? String == "delivered")
            #expect(first["journal"] == nil)
            let jobs = try #require(first["jobs"] as? [[String: Any]])
            #expect(jobs.map { $0["directive"] as? String } == [alices.id.display])
            let deliveries = try #require(first["deliveries"] as? [[String: Any]])
            #expect(deliveries.count == 1)
            #expect(deliveries.first?["destination"] as? String == "folder:archive/inbox")
            #expect(deliveries.first?["state"] as? String == "delivered")
            #expect(deliveries.first?["attempts"] as? Int == 1)
            let shared = try #require(mine.array.first)
            #expect((shared["jobs"] as? [[String: Any]])?.map { $0["number"] as? Int } == [1])
            #expect((shared["deliveries"] as? [[String: Any]])?.map { $0["destination"] as? String } == ["folder:archive/inbox"])

            let bobsOwn = try await Self.call(client, .get, "/api/messages", token: world.bob).array
            #expect(bobsOwn.compactMap { $0["id"] as? String } == [both.id, b.id])
            let bobsMail = try #require(bobsOwn.last?["deliveries"] as? [[String: Any]])
            #expect(bobsMail.first?["state"] as? String == "queued")
            #expect(bobsOwn.last?["outcome"] as? String == "queued")

            let refused = try await Self.call(client, .get, "/api/messages/\(b.id)", token: world.alice)
            #expect(refused.status == .forbidden)
            #expect(refused.code == "forbidden")
            let one = try await Self.call(client, .get, "/api/messages/\(a.id)", token: world.alice)
            #expect(one.status == .ok)
            #expect(Self.events(one).contains("delivered"))
            let unknown = try await Self.call(client, .get, "/api/messages/nosuchmessage", token: world.alice)
            #expect(unknown.status == .notFound)

            // An admin: anyone's activity, and every job of a message.
            let asBob = try await Self.call(client, .get, "/api/messages?user=bob@example.com", token: world.admin)
            #expect(asBob.array.compactMap { $0["id"] as? String } == [both.id, b.id])
            #expect(try await Self.call(client, .get, "/api/messages", token: world.admin).array.isEmpty)
            let whole = try await Self.call(client, .get, "/api/messages/\(both.id)", token: world.admin)
            #expect((whole.json["jobs"] as? [[String: Any]])?.count == 2)
            #expect((whole.json["deliveries"] as? [[String: Any]])?.count == 2)
            // A user may name themself.
            #expect(try await Self.call(client, .get, "/api/messages?user=alice@example.com", token: world.alice).status == .ok)
            #expect(try await Self.call(client, .get, "/api/messages?limit=0", token: world.alice).status == .badRequest)
        }
    }
}
