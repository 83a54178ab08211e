import ArgumentParser
import Foundation
import WaybillCore
import WaybillStore

/// `waybill token`: API tokens for scripts (`Authorization: Bearer <token>`).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create an API token for a user; the token is the last line printed.",
            discussion: "Only a digest of the token is stored: it cannot be shown again. Revoke it with 'waybill token revoke ID'.")
        @OptionGroup var settings: SettingsOptions
        @Option(help: "The user the token acts as.") var user: String

        func run() async throws {
            let store = try CommandContext(settings).store()
            guard let owner = try await store.user(named: user) else {
                throw WaybillError(.unknownUser, "no user \(user); add one with: waybill user add \(user) --password-file FILE")
            }
            let token = APIToken.generate()
            let record = try await store.addToken(digest: APIToken.digest(of: token), user: owner.name, at: Date())
            print("Created API token \(record.id) for \(record.user) (shown once; store it now):")
            print(token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List API tokens (never the tokens themselves).")
        @OptionGroup var settings: SettingsOptions
        @Option(help: "Only this user's tokens.") var user: String?

        func run() async throws {
            let tokens = try await CommandContext(settings).store().tokens(user: user)
            if tokens.isEmpty { print("No API tokens. Create one with: waybill token create --user NAME") }
            for token in tokens {
                let state = token.revokedAt.map { "revoked \(HumanDate.formatISO($0))" } ?? "active"
                let used = token.lastUsedAt.map(HumanDate.formatISO) ?? "never"
                print("\(token.id)  \(token.user)  created \(HumanDate.formatISO(token.createdAt))  last used \(used)  \(state)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an API token: it stops working at once.")
        @OptionGroup var settings: SettingsOptions
        @Argument(help: "The token's id (from 'waybill token list').") var id: Int64

        func run() async throws {
            let record = try await CommandContext(settings).store().revokeToken(id, at: Date())
            print("Revoked API token \(record.id) of \(record.user)")
        }
    }
}
