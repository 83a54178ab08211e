import ArgumentParser
import Foundation
import Logging
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore

/// `waybill quarantine`: what was refused and why; reroute, release or delete it. Every action
/// runs the same pipeline as `serve` and is written to the journal with who did it.
struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine", abstract: "List, inspect, reroute, release or delete refused messages.",
        subcommands: [List.self, Show.self, Reroute.self, Release.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Quarantined messages, held ones first, newest first.")
        @OptionGroup var settings: SettingsOptions
        @Flag(help: "Every entry, also those released, rerouted or deleted.") var all = false
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let entries = try await context.store().quarantineEntries().filter { all || $0.state == .held }
            if json {
                try Output.json(entries.map(EntryJSON.init))
                return
            }
            if entries.isEmpty { print("Nothing is held in quarantine.") }
            for entry in entries {
                print(
                    "\(entry.messageID)  \(HumanDate.formatISO(entry.at))  \(entry.state.rawValue)  \(entry.reason)  from <\(entry.sender)>  \(entry.subject.map { "\"\($0)\"" } ?? "")"
                )
                print("    \(entry.detail)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One quarantined message, with its journal.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let store = try context.store()
            let entry = try await QuarantineCommand.entry(id, store)
            let journal = try await store.journal(messageID: id)
            if json {
                try Output.json(ShowJSON(entry: EntryJSON(entry), journal: journal.map(JournalJSON.init)))
                return
            }
            print("Message \(entry.messageID): \(entry.state.rawValue)")
            print("  Reason:     \(entry.reason): \(entry.detail)")
            print("  From:       <\(entry.sender)>")
            print("  To:         \(entry.recipients.joined(separator: ", "))")
            if let subject = entry.subject { print("  Subject:    \(subject)") }
            print("  Kept at:    \(try QuarantineCommand.pipeline(context, store).quarantinedFile(entry.messageID).path)")
            print("Journal:")
            for line in journal {
                print("  \(HumanDate.formatISO(line.at))  \(line.event)  \(line.detail)  [\(line.actor)]")
            }
        }
    }

    struct Reroute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Route a held message to a directive of your choice: every page, as it was scanned.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String
        @Option(help: "The directive to deliver to.") var directive: String

        func run() async throws {
            let context = try CommandContext(settings)
            let store = try context.store()
            let target = try await context.directive(directive)
            try await QuarantineCommand.rerun(id, context: context, store: store, override: target.id, newState: .rerouted)
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a held message through the routing rules again (after fixing what refused it).")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String

        func run() async throws {
            let context = try CommandContext(settings)
            try await QuarantineCommand.rerun(id, context: context, store: try context.store(), override: nil, newState: .released)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a held message for good (the journal keeps its history).")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String

        func run() async throws {
            let context = try CommandContext(settings)
            let store = try context.store()
            let entry = try await QuarantineCommand.entry(id, store)
            guard entry.state == .held else {
                throw WaybillError(.invalidQuarantineAction, "message \(id) is \(entry.state.rawValue), not held")
            }
            let file = try QuarantineCommand.pipeline(context, store).quarantinedFile(id)
            try? FileManager.default.removeItem(at: file)
            try await store.setQuarantineState(id, .deleted, at: Date())
            try await store.journal([
                JournalEntry(at: Date(), messageID: id, event: "deleted", detail: "removed from quarantine", actor: QuarantineCommand.actor)
            ])
            print("Deleted message \(id).")
        }
    }

    static var actor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "\(getuid())") }

    static func entry(_ id: String, _ store: SQLiteDirectiveStore) async throws -> QuarantineEntry {
        guard let entry = try await store.quarantineEntry(id) else {
            throw WaybillError(.unknownMessage, "no quarantined message \(id) (see 'waybill quarantine list')")
        }
        return entry
    }

    static func pipeline(_ context: CommandContext, _ store: SQLiteDirectiveStore) throws -> Pipeline {
        try context.pipeline(
            rules: try context.settings.routingRules(),
            batchRules: BatchRules(firstPageMustBeSheet: try context.settings.bool(.firstPageMustBeSheet)),
            logger: Logger(label: "waybill.ingest", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static func rerun(
        _ id: String, context: CommandContext, store: SQLiteDirectiveStore, override: DirectiveID?, newState: QuarantineState
    ) async throws {
        let entry = try await entry(id, store)
        guard entry.state == .held else {
            throw WaybillError(.invalidQuarantineAction, "message \(id) is \(entry.state.rawValue), not held")
        }
        let pipeline = try pipeline(context, store)
        let message = pipeline.quarantinedMessage(
            entry, receivedAt: (try await store.message(id))?.receivedAt ?? entry.at, directiveOverride: override)
        try await store.journal([
            JournalEntry(
                at: Date(), messageID: id, event: newState == .rerouted ? "rerouted" : "released",
                detail: override.map { "to directive \($0.display), every page as scanned" } ?? "through the routing rules again",
                actor: actor)
        ])
        let outcome = try await pipeline.process(message, actor: actor, again: true)
        switch outcome {
        case .delivered(let jobs, let files, _, let queued):
            try await store.setQuarantineState(id, newState, at: Date())
            try? FileManager.default.removeItem(at: pipeline.quarantinedFile(id))
            print("Delivered message \(id): \(jobs) job(s).")
            for file in files { print("  \(file)") }
            if queued > 0 { print("  \(queued) more delivery(ies) queued (mail, webhooks): see 'waybill queue list'.") }
        case .quarantined(let reason, let detail, _):
            throw WaybillError(.stillQuarantined, "message \(id) is still refused: \(reason): \(detail)")
        }
    }

    struct EntryJSON: Encodable {
        let id: String
        let reason: String
        let detail: String
        let at: String
        let state: String
        let sender: String
        let recipients: [String]
        let subject: String?

        init(_ entry: QuarantineEntry) {
            id = entry.messageID
            reason = entry.reason
            detail = entry.detail
            at = HumanDate.formatISO(entry.at)
            state = entry.state.rawValue
            sender = entry.sender
            recipients = entry.recipients
            subject = entry.subject
        }
    }

    struct JournalJSON: Encodable {
        let at: String
        let event: String
        let detail: String
        let actor: String

        init(_ entry: JournalEntry) {
            at = HumanDate.formatISO(entry.at)
            event = entry.event
            detail = entry.detail
            actor = entry.actor
        }
    }

    struct ShowJSON: Encodable {
        let entry: EntryJSON
        let journal: [JournalJSON]
    }
}

extension WaybillError.Code {
    static let unknownMessage = WaybillError.Code("unknown-message")
    static let invalidQuarantineAction = WaybillError.Code("invalid-quarantine-action")
    static let stillQuarantined = WaybillError.Code("still-quarantined")
}
