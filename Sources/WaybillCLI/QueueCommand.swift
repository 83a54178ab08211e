import ArgumentParser
import Foundation
import Logging
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore

/// `waybill queue`: the outbox, for operators. Deliveries waiting for their next attempt and
/// dead letters; show one with its history, retry or purge them, or attempt what is due now.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "List, inspect, retry or purge deliveries (mail, webhooks, folders).",
        subcommands: [List.self, Show.self, Retry.self, Purge.self, Run.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Deliveries waiting or given up (dead letters), oldest first.")
        @OptionGroup var settings: SettingsOptions
        @Flag(help: "Also those delivered and purged.") var all = false
        @Flag(help: "Only dead letters.") var dead = false
        @Option(help: "At most this many.") var limit = 1000
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let states: Set<DeliveryState> = dead ? [.dead] : all ? Set(DeliveryState.allCases) : [.queued, .sending, .dead]
            let rows = try await context.store().deliveries(states: states, limit: max(1, limit))
            if json {
                try Output.json(rows.map(OperatorJSON.Delivery.init))
                return
            }
            if rows.isEmpty { print(dead ? "No dead letters." : "The delivery queue is empty.") }
            for row in rows { print(QueueCommand.line(row)) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One delivery, with its message's journal.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The delivery id (from 'waybill queue list').") var id: Int64
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let store = try context.store()
            let row = try await QueueCommand.row(id, store)
            let journal = try await store.journal(messageID: row.messageID)
            if json {
                try Output.json(ShowJSON(delivery: OperatorJSON.Delivery(row), journal: journal.map(OperatorJSON.Journal.init)))
                return
            }
            print("Delivery \(row.id): \(row.state.rawValue)")
            print("  Message:      \(row.messageID)" + (row.job > 0 ? ", job \(row.job)" : ""))
            print("  Kind:         \(row.kind.rawValue)")
            print("  Destination:  \(row.destination)")
            print("  Document:     \(row.fileName) (\(row.document))")
            print("  Attempts:     \(row.attempts)")
            print("  Queued:       \(HumanDate.formatISO(row.createdAt))")
            if let next = row.nextAttemptAt, row.state == .queued { print("  Next attempt: \(HumanDate.formatISO(next))") }
            if let error = row.lastError { print("  Last error:   \(error)") }
            if !row.target.isEmpty { print("  Delivered as: \(row.target)") }
            print("Journal:")
            for line in journal {
                print("  \(HumanDate.formatISO(line.at))  \(line.event)  \(line.detail)  [\(line.actor)]")
            }
        }
    }

    /// The rows `retry` and `purge` act on: the ids given, and every dead letter with `--dead`.
    struct Selection: ParsableArguments {
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "Delivery ids.") var ids: [Int64] = []
        @Flag(help: "Every dead letter.") var dead = false
        @Flag(help: "Print the rows as a JSON array.") var json = false

        func validate() throws {
            guard !ids.isEmpty || dead else { throw ValidationError("name delivery ids, or --dead for every dead letter") }
        }

        /// Runs `act` on each row through the operator's desk (the same one the web app uses),
        /// printing as asked. A row in no state for it stops the run with `invalid-queue-action`.
        func each(
            _ act: (QueueDesk, Int64) async throws -> DeliveryRecord, said: (DeliveryRecord) -> String
        ) async throws {
            let context = try CommandContext(settings)
            let store = try context.store()
            let desk = QueueDesk(store: store, dataDirectory: context.data)
            var targets = ids
            if dead { targets += try await store.deliveries(states: [.dead], limit: 100_000).map(\.id) }
            var done: [DeliveryRecord] = []
            defer { if json { try? Output.json(done.map(OperatorJSON.Delivery.init)) } }
            for id in targets {
                let row = try await QueueCommand.row(id, store)
                done.append(try await act(desk, id))
                if !json { print(said(row)) }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retry",
            abstract: "Attempt deliveries again now (a dead letter gets a new give-up time); 'waybill serve' picks them up.")
        @OptionGroup var selection: Selection

        func run() async throws {
            try await selection.each { desk, id in
                try await desk.retry(id, actor: QuarantineCommand.actor)
            } said: { "Queued delivery \($0.id) to \($0.destination) for an attempt now." }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Give deliveries up for good: never attempted again (the journal keeps their history).")
        @OptionGroup var selection: Selection

        func run() async throws {
            try await selection.each { desk, id in
                try await desk.purge(id, actor: QuarantineCommand.actor)
            } said: { "Purged delivery \($0.id) to \($0.destination)." }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Attempt every delivery that is due now, once, and exit ('waybill serve' does this all the time).")
        @OptionGroup var settings: SettingsOptions

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
            let context = try CommandContext(settings)
            let webhooks = try context.webhookTransport()
            let pipeline = try context.pipeline(rules: try context.settings.routingRules(), webhooks: webhooks)
            let queue = DeliveryQueue(
                deliverer: pipeline.deliverer, concurrency: try context.settings.integer(.deliveryWorkers, in: 1...64, default: 4),
                logger: Logger(label: "waybill.queue"))
            let count = await queue.runDue()
            try? await webhooks.shutdown()
            let rows = try await context.store().deliveries(states: [.queued, .sending, .dead], limit: 100_000)
            print("Attempted \(count) deliveries; \(rows.filter { $0.state != .dead }.count) waiting, \(rows.filter { $0.state == .dead }.count) dead.")
        }
    }

    static func row(_ id: Int64, _ store: SQLiteDirectiveStore) async throws -> DeliveryRecord {
        guard let row = try await store.delivery(id) else {
            throw WaybillError(.unknownDelivery, "no delivery \(id) (see 'waybill queue list')")
        }
        return row
    }

    static func line(_ row: DeliveryRecord) -> String {
        var text = "\(row.id)  \(row.state.rawValue)  \(row.messageID)" + (row.job > 0 ? "/\(row.job)" : "") + "  \(row.kind.rawValue) → \(row.destination)"
        text += "  attempts \(row.attempts)"
        if row.state == .queued, let next = row.nextAttemptAt { text += "  next \(HumanDate.formatISO(next))" }
        if let error = row.lastError, row.state != .delivered { text += "\n    \(error)" }
        return text
    }

    struct ShowJSON: Encodable {
        let delivery: OperatorJSON.Delivery
        let journal: [OperatorJSON.Journal]
    }
}

extension Settings {
    func integer(_ key: SettingKey, in range: ClosedRange<Int>, default fallback: Int) throws -> Int {
        guard let text = values[key], !text.isEmpty else { return fallback }
        return try integer(key, in: range)
    }
}
