import ArgumentParser
import Foundation
import WaybillCore
import WaybillStore

/// `waybill user`: the people who sign in to the web app and own API tokens.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Add and list the users of the web app and API.",
        subcommands: [Add.self, List.self, Password.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add a user.",
            discussion: """
                NAME is the person's email address: the directives they create are owned by it. \
                The password is read from a file (mode 0600, or '-' for standard input), never from \
                the command line, where other users of the machine could see it; one trailing line end is dropped.
                """)

        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The user's email address.") var name: String
        @Flag(help: "An administrator: sees and changes every directive.") var admin = false
        @Option(help: "A file holding the password (mode 0600), or '-' for standard input.") var passwordFile: String

        func run() async throws {
            let password = try PasswordFile.read(passwordFile)
            let context = try CommandContext(settings)
            let user = try User.make(name: name, role: admin ? .admin : .user, password: password, now: Date())
            try await context.store().addUser(user)
            print("Added \(user.role.rawValue) \(user.name)")
            print("Make an API token with: waybill token create --user \(user.name)")
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "password",
            abstract: "Set a user's password (which signs them out of the web app everywhere).",
            discussion: "The password is read from a file (mode 0600) or '-' for standard input, as for 'user add'.")

        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The user's email address.") var name: String
        @Option(help: "A file holding the new password (mode 0600), or '-' for standard input.") var passwordFile: String

        func run() async throws {
            let password = try PasswordFile.read(passwordFile)
            let context = try CommandContext(settings)
            try await context.store().setPasswordHash(try User.hashPassword(password), forUser: name)
            print("Changed the password of \(name); their web sessions have ended.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
        @OptionGroup var settings: SettingsOptions
        @Flag(help: "Print a JSON array.") var json = false

        struct Entry: Encodable {
            let name: String
            let role: String
            let created: String
        }

        func run() async throws {
            let users = try await CommandContext(settings).store().allUsers()
            if json {
                try Output.json(users.map { Entry(name: $0.name, role: $0.role.rawValue, created: HumanDate.formatISO($0.createdAt)) })
                return
            }
            if users.isEmpty { print("No users yet. Add one with: waybill user add NAME --password-file FILE") }
            for user in users {
                print("\(user.name)  \(user.role.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0))  since \(HumanDate.formatISO(user.createdAt))")
            }
        }
    }
}

/// Passwords given as files: refused if others may read them or if empty.
enum PasswordFile {
    static func read(_ path: String) throws -> String {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let contents = FileManager.default.contents(atPath: path)
            else {
                throw ValidationError("cannot read the password file \(path)")
            }
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            guard mode & 0o077 == 0 else {
                throw ValidationError(
                    "the password file \(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
            }
            data = contents
        }
        var password = String(decoding: data, as: UTF8.self)
        if password.hasSuffix("\r\n") {
            password.removeLast(1)
        } else if password.hasSuffix("\n") {
            password.removeLast()
        }
        guard !password.isEmpty else { throw ValidationError("the password file \(path) is empty") }
        return password
    }
}
