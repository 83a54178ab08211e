import Foundation
import Testing
import WaybillCore
import WaybillStore

/// The outbox rows in a real SQLite file: queued once, taken by one attempt, retried, given up.
@Suite struct DeliveryLedgerTests {
    let store: SQLiteDirectiveStore
    let now = Date()

    init() throws {
        let data = DataDirectory(path: NSTemporaryDirectory() + "waybill-queue-\(UUID().uuidString)")
        store = try data.openStore()
    }

    func message(_ id: String = "M1") async throws {
        _ = try await store.openMessage(MessageRecord(id: id, receivedAt: now, sender: "s@example.com", recipients: ["scan@localhost"], size: 1))
    }

    func row(_ destination: String, job: Int = 1, kind: DeliveryKind = .document, message: String = "M1") -> NewDelivery {
        NewDelivery(
            messageID: message, job: job, kind: kind, destination: destination, document: "/tmp/doc.pdf", fileName: "doc.pdf",
            sha256: String(repeating: "a", count: 64))
    }

    @Test func enqueueingTwiceQueuesOnce() async throws {
        try await message()
        let first = try await store.enqueue([row("mailto:a@example.com"), row("https://hooks.example.com/in")], at: now, journal: [])
        let second = try await store.enqueue([row("mailto:a@example.com"), row("https://hooks.example.com/in")], at: now, journal: [])
        #expect(first.map(\.id) == second.map(\.id))
        #expect(try await store.deliveries(messageID: "M1").count == 2)
        #expect(first.allSatisfy { $0.state == .queued && $0.attempts == 0 })
        // A notice to the same address is another row.
        _ = try await store.enqueue([row("mailto:a@example.com", job: 0, kind: .notice)], at: now, journal: [])
        #expect(try await store.deliveries(messageID: "M1").count == 3)
        #expect(try await store.journal(messageID: "M1").filter { $0.event == "queued" }.count == 3)
    }

    @Test func onlyOneAttemptTakesARow() async throws {
        try await message()
        let id = try #require(try await store.enqueue([row("mailto:a@example.com")], at: now, journal: []).first).id
        let claims = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (try? await store.claimDelivery(id, at: now, until: now.addingTimeInterval(60))) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(claims == 1)
        #expect(try await store.delivery(id)?.state == .sending)
        #expect(try await store.dueDeliveries(at: now.addingTimeInterval(3600), limit: 10).isEmpty)
    }

    @Test func retryDeadAndDelivered() async throws {
        try await message()
        let rows = try await store.enqueue([row("mailto:a@example.com"), row("mailto:b@example.com")], at: now, journal: [])
        let (a, b) = (rows[0].id, rows[1].id)
        #expect(try await store.dueDeliveries(at: now.addingTimeInterval(1), limit: 10).count == 2)

        _ = try await store.claimDelivery(a, at: now, until: now.addingTimeInterval(60))
        let next = now.addingTimeInterval(300)
        try await store.recordAttempt(a, .retry(error: "451 try later", next: next), at: now, journal: [])
        var back = try #require(try await store.delivery(a))
        #expect(back.state == .queued && back.attempts == 1 && back.lastError == "451 try later")
        #expect(abs(back.nextAttemptAt!.timeIntervalSince(next)) < 0.001)
        #expect(try await store.dueDeliveries(at: now.addingTimeInterval(10), limit: 10).map(\.id) == [b])
        #expect(try await store.dueDeliveries(at: next.addingTimeInterval(1), limit: 10).map(\.id).sorted() == [a, b])
        #expect(try await store.nextDelivery() != nil)

        _ = try await store.claimDelivery(a, at: next, until: next.addingTimeInterval(60))
        try await store.recordAttempt(a, .dead(error: "550 no such user"), at: next, journal: [])
        back = try #require(try await store.delivery(a))
        #expect(back.state == .dead && back.attempts == 2 && back.nextAttemptAt == nil)
        #expect(try await store.deliveries(states: [.dead], limit: 10).map(\.id) == [a])

        _ = try await store.claimDelivery(b, at: now, until: now.addingTimeInterval(60))
        try await store.recordAttempt(b, .delivered(target: "250 2.0.0 queued as X"), at: now, journal: [])
        #expect(try await store.delivery(b)?.state == .delivered)
        #expect(try await store.delivery(b)?.target == "250 2.0.0 queued as X")
        // Delivered rows cannot be retried or purged; dead ones can.
        #expect(try await store.retryDelivery(b, at: now, journal: []) == nil)
        #expect(try await store.purgeDelivery(b, at: now, journal: []) == nil)
        let later = now.addingTimeInterval(86400)
        let retried = try #require(try await store.retryDelivery(a, at: later, journal: []))
        #expect(retried.state == .queued && abs(retried.retrySince.timeIntervalSince(later)) < 0.001)
        #expect(try await store.purgeDelivery(a, at: later, journal: [])?.state == .purged)
        #expect(try await store.dueDeliveries(at: later.addingTimeInterval(1), limit: 10).isEmpty)
    }

    @Test func abandonedAttemptsAreQueuedAgain() async throws {
        try await message()
        let id = try #require(try await store.enqueue([row("folder:archive/x")], at: now, journal: []).first).id
        _ = try await store.claimDelivery(id, at: now, until: now.addingTimeInterval(60))
        try await store.planTarget(id, target: "/archive/x/doc.pdf")
        // Still held: not taken back before its hold runs out…
        #expect(try await store.requeueAbandoned(before: now) == 0)
        // …but after it (or at a start, which passes the distant future).
        #expect(try await store.requeueAbandoned(before: now.addingTimeInterval(61)) == 1)
        let back = try #require(try await store.delivery(id))
        #expect(back.state == .queued && back.target == "/archive/x/doc.pdf")
    }
}
