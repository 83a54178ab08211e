public import ArgumentParser
import Foundation
import WaybillCore

/// `waybill`: routing sheets and scan routing.
public struct WaybillCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "waybill",
        abstract: "Routing sheets and scan routing.",
        subcommands: [
            ServeCommand.self, IngestCommand.self, DirectiveCommand.self, SheetCommand.self, DecodeCommand.self, KeyCommand.self,
            RulesCommand.self, UserCommand.self, TokenCommand.self,
            QuarantineCommand.self, QueueCommand.self, SMTPPasswordCommand.self, BenchCommand.self,
        ]
    )

    public init() {}

    /// Runs the command line; Waybill's own errors print as `waybill: error: … [code]` and exit 1.
    public static func runMain(_ arguments: [String]? = nil) async {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as WaybillError {
            FileHandle.standardError.write(Data("waybill: error: \(error.message) [\(error.code)]\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Shared by commands that print for people or for scripts.
struct Output {
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }
}
