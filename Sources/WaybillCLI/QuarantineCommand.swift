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
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Quarantined messages, held ones first, newest first.")
        @OptionGroup var settings: SettingsOptions
        @Flag(help: "Every entry, also those released, rerouted or deleted.") var all = false
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let entries = try await QuarantineCommand.desk(context).entries(all: all)
            if json {
                try Output.json(entries.map(OperatorJSON.Entry.init))
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
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One quarantined message, with its journal.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let desk = try QuarantineCommand.desk(context)
            let entry = try await QuarantineCommand.entry(id, desk)
            let journal = try await desk.store.journal(messageID: id)
            if json {
                try Output.json(ShowJSON(entry: OperatorJSON.Entry(entry), journal: journal.map(OperatorJSON.Journal.init)))
                return
            }
            print("Message \(entry.messageID): \(entry.state.rawValue)")
            print("  Reason:     \(entry.reason): \(entry.detail)")
            print("  From:       <\(entry.sender)>")
            print("  To:         \(entry.recipients.joined(separator: ", "))")
            if let subject = entry.subject { print("  Subject:    \(subject)") }
            print("  Kept at:    \(desk.file(entry.messageID).path)")
            print("Journal:")
            for line in journal {
                print("  \(HumanDate.formatISO(line.at))  \(line.event)  \(line.detail)  [\(line.actor)]")
            }
        }
    }

    struct Reroute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reroute",
            abstract: "Route a held message to a directive of your choice: every page, as it was scanned.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String
        @Option(help: "The directive to deliver to.") var directive: String

        func run() async throws {
            let context = try CommandContext(settings)
            let desk = try QuarantineCommand.desk(context)
            let target = try await context.directive(directive)
            _ = try await QuarantineCommand.entry(id, desk)
            QuarantineCommand.report(id, try await desk.reroute(id, to: target.id, actor: QuarantineCommand.actor))
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Run a held message through the routing rules again (after fixing what refused it).")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String

        func run() async throws {
            let desk = try QuarantineCommand.desk(try CommandContext(settings))
            _ = try await QuarantineCommand.entry(id, desk)
            QuarantineCommand.report(id, try await desk.release(id, actor: QuarantineCommand.actor))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Delete a held message for good (the journal keeps its history).")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The message id.") var id: String

        func run() async throws {
            let desk = try QuarantineCommand.desk(try CommandContext(settings))
            _ = try await QuarantineCommand.entry(id, desk)
            try await desk.delete(id, actor: QuarantineCommand.actor)
            print("Deleted message \(id).")
        }
    }

    static var actor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "\(getuid())") }

    /// The message's entry, or an error that says where to look.
    static func entry(_ id: String, _ desk: QuarantineDesk) async throws -> QuarantineEntry {
        guard let entry = try await desk.store.quarantineEntry(id) else {
            throw WaybillError(.unknownMessage, "no quarantined message \(id) (see 'waybill quarantine list')")
        }
        return entry
    }

    /// The desk over the pipeline `serve` would run, with this data directory's rules.
    static func desk(_ context: CommandContext) throws -> QuarantineDesk {
        QuarantineDesk(
            pipeline: try context.pipeline(
                rules: try context.settings.routingRules(),
                batchRules: BatchRules(firstPageMustBeSheet: try context.settings.bool(.firstPageMustBeSheet)),
                logger: Logger(label: "waybill.ingest", factory: { _ in SwiftLogNoOpLogHandler() })))
    }

    static func report(_ id: String, _ result: QuarantineActionResult) {
        print("Delivered message \(id): \(result.jobs) job(s).")
        for file in result.files { print("  \(file)") }
        if result.queued > 0 { print("  \(result.queued) more delivery(ies) queued (mail, webhooks): see 'waybill queue list'.") }
    }

    struct ShowJSON: Encodable {
        let entry: OperatorJSON.Entry
        let journal: [OperatorJSON.Journal]
    }
}
