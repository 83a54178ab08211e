public import ArgumentParser
import Foundation
public import WaybillCore
import WaybillDelivery
import WaybillStore

struct DirectiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "directive",
        abstract: "Create, list, show and revoke Embedded Directives.",
        subcommands: [Create.self, List.self, Show.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create a directive.",
            discussion: """
                Destinations: mailto:NAME@DOMAIN, folder:ROOT/SUB/PATH (ROOT is a configured folder root, \
                'archive' by default), or an https:// webhook under an allowed prefix.
                """)

        @OptionGroup var settings: SettingsOptions
        @Option(help: "Title printed on the sheet.") var title: String
        @Option(help: "Owner's email address.") var owner: String
        @Option(name: .customLong("to"), help: "A destination URI (repeat for several).") var destinations: [String] = []
        @Option(help: "Expiry: a date (2027-03-31, valid through that day), an ISO 8601 time, or a duration (30d).")
        var expires: String?
        @Option(help: "Expire after this long unused (such as 90d).") var idleExpiry: String?
        @Option(help: "Maximum number of uses.") var maxUses: Int?
        @Option(help: "private, shared or public.") var visibility: Visibility = .private
        @Option(help: "Output format: pdf or original.") var format: OutputFormat = .pdf
        @Flag(help: "Send the owner a confirmation of each delivery.") var deliveryConfirmation = false
        @Option(help: "File-name pattern ({date}, {time}, {directive}, {message}, {title}, {n}).")
        var fileNamePattern: String = DirectiveOptions.defaultFileNamePattern
        @Option(help: "A note printed on the sheet.") var notes: String = ""
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let now = Date()
            var draft = DirectiveDraft(title: title, owner: owner, destinations: destinations)
            if let expires {
                guard let date = TimeSpec.parseExpiry(expires, now: now) else {
                    throw WaybillError(.invalidExpiry, "cannot read expiry '\(expires)': use a date (2027-03-31) or a duration (30d)")
                }
                draft.expiresAt = date
            }
            if let idleExpiry {
                guard let seconds = TimeSpec.parseDuration(idleExpiry) else {
                    throw WaybillError(.invalidExpiry, "cannot read idle expiry '\(idleExpiry)': use a duration such as 90d")
                }
                draft.idleExpiry = seconds
            }
            draft.maxUses = maxUses
            draft.visibility = visibility
            draft.options = DirectiveOptions(
                deliveryConfirmation: deliveryConfirmation, outputFormat: format, fileNamePattern: fileNamePattern,
                notes: notes)
            let directive = try draft.validated(id: DirectiveID.random(), now: now, policy: context.policy)
            let resolver = FolderResolver(roots: context.policy.folderRoots)
            for destination in directive.destinations {
                if case .folder = destination { _ = try resolver.resolve(destination) }
            }
            let keys = try context.keys()
            let store = try context.store()
            try await store.insert(directive)
            let token = try keys.sign(directive.id)
            if json {
                try Output.json(DirectiveJSON(directive, token: token, now: now))
            } else {
                print("Created directive \(directive.id.display) (\(directive.id.rawValue)): \(directive.title)")
                print("Print its routing sheet with: waybill sheet \(directive.id.rawValue) -o sheet.pdf")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List directives, newest first.")
        @OptionGroup var settings: SettingsOptions
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let directives = try await context.store().allDirectives()
            let now = Date()
            if json {
                let keys = try context.keys()
                try Output.json(try directives.map { try DirectiveJSON($0, token: keys.sign($0.id), now: now) })
                return
            }
            if directives.isEmpty {
                print("No directives yet. Create one with: waybill directive create --title … --owner … --to …")
            }
            for directive in directives {
                let status = directive.status(at: now).name
                let uses = directive.maxUses.map { "\(directive.useCount)/\($0)" } ?? "\(directive.useCount)"
                print("\(directive.id.display)  \(status.padding(toLength: 12, withPad: " ", startingAt: 0)) uses \(uses)  \(directive.title)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one directive.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The directive id (as printed on its sheet).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let directive = try await context.directive(id)
            let now = Date()
            let token = try context.keys().sign(directive.id)
            if json {
                try Output.json(DirectiveJSON(directive, token: token, now: now))
                return
            }
            print("Directive   \(directive.id.display)")
            print("Title       \(directive.title)")
            print("Owner       \(directive.owner)")
            print("Status      \(directive.status(at: now).explanation(for: directive.id))")
            print("Visibility  \(directive.visibility.rawValue)")
            for destination in directive.destinations { print("Delivers to \(destination.uri)") }
            print("Created     \(HumanDate.formatISO(directive.createdAt))")
            print("Expires     \(directive.expiresAt.map(HumanDate.formatISO) ?? "never")")
            if let idle = directive.idleExpiry { print("Idle expiry \(idle) s") }
            print("Uses        \(directive.useCount) of \(directive.maxUses.map(String.init) ?? "unlimited")")
            print("Token       \(token)")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke", abstract: "Revoke a directive: its sheets stop working at once.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The directive id.") var id: String

        func run() async throws {
            let context = try CommandContext(settings)
            let directive = try await context.directive(id)
            let revoked = try await context.store().revoke(directive.id, at: Date())
            print("Revoked directive \(revoked.id.display): \(revoked.title)")
        }
    }
}

/// The one place where configuration meets concrete types for the CLI commands.
struct CommandContext {
    let settings: Settings
    let data: DataDirectory
    let policy: DestinationPolicy

    init(_ options: SettingsOptions, extraFlags: [SettingKey: String] = [:]) throws {
        settings = try options.resolve(extraFlags: extraFlags)
        data = DataDirectory(path: settings.dataDirectory)
        policy = try settings.destinationPolicy()
    }

    func store() throws -> SQLiteDirectiveStore { try data.openStore() }

    func keys() throws -> SigningKeys { try data.loadOrCreateKeys() }

    /// The keys if there are any, creating nothing: for commands that only read, such as `decode`.
    func existingKeys() throws -> SigningKeys {
        FileManager.default.fileExists(atPath: data.keysPath) ? try data.loadKeys() : SigningKeys(keys: [])
    }

    /// Looks a directive up by what a person typed; unknown or malformed ids are clear errors.
    func directive(_ text: String) async throws -> Directive {
        guard let id = DirectiveID(text) else {
            throw WaybillError(
                .invalidDirectiveID, "'\(text)' is not a directive id (10 characters such as K7QM2-XR9PC; check for typos)")
        }
        guard let directive = try await store().directive(id) else {
            throw WaybillError(.unknownDirective, "no directive \(id.display)")
        }
        return directive
    }
}

extension Visibility: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
