import ArgumentParser
import Foundation
import WaybillCore
import WaybillStore

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the keys that sign routing sheets.",
        discussion: """
            The newest active key signs new sheets; every active key verifies. Rotate to start signing \
            with a new key while old sheets keep working; retire a key to invalidate every sheet signed with it.
            """,
        subcommands: [List.self, Rotate.self, Retire.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List signing keys.")
        @OptionGroup var settings: SettingsOptions

        func run() async throws {
            let keys = try CommandContext(settings).keys()
            let active = keys.active?.id
            for key in keys.keys {
                let state = key.retiredAt.map { "retired \(HumanDate.formatISO($0))" } ?? (key.id == active ? "signing" : "verifying")
                print("\(key.id)  created \(HumanDate.formatISO(key.createdAt))  \(state)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate", abstract: "Add a new signing key; older keys still verify.")
        @OptionGroup var settings: SettingsOptions

        func run() async throws {
            let context = try CommandContext(settings)
            let key = try context.data.withKeysLocked {
                var keys = try context.keys()
                let key = keys.rotate(now: Date())
                try context.data.saveKeys(keys)
                return key
            }
            print("New signing key \(key.id); sheets printed before still verify until their key is retired.")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retire", abstract: "Retire a key: sheets signed with it stop verifying.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "Key id, such as K1.") var id: String

        func run() async throws {
            let context = try CommandContext(settings)
            try context.data.withKeysLocked {
                var keys = try context.keys()
                try keys.retire(id.uppercased(), now: Date())
                try context.data.saveKeys(keys)
            }
            print("Retired key \(id.uppercased()).")
        }
    }
}
