import ArgumentParser
import Foundation
import WaybillCore

/// `waybill rules list|test`: which rule decides an address, and why.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Show the routing rules and test an address against them.",
        subcommands: [List.self, Test.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the routing rules in the order they are tried.")
        @OptionGroup var settings: SettingsOptions
        @Option(help: "Routing rules, PATTERN=ACTION, comma-separated. Env: WAYBILL_RULES.") var rules: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let resolved = try CommandContext(settings, extraFlags: rules.map { [.rules: $0] } ?? [:]).settings.routingRules()
            if json {
                try Output.json(resolved.rules.enumerated().map { RuleJSON(number: $0.offset + 1, rule: $0.element) })
                return
            }
            for (index, rule) in resolved.rules.enumerated() {
                print("\(index + 1). \(rule.pattern)  (\(rule.kind), \(rule.origin))  → \(rule.actionDescription)")
            }
            print("Any other address is refused at RCPT (550 5.1.1): Waybill is never an open relay.")
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Explain what happens to mail for ADDRESS.")
        @OptionGroup var settings: SettingsOptions
        @Option(help: "Routing rules, PATTERN=ACTION, comma-separated. Env: WAYBILL_RULES.") var rules: String?
        @Argument(help: "A recipient address, as a scanner would send to.") var address: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let resolved = try CommandContext(settings, extraFlags: rules.map { [.rules: $0] } ?? [:]).settings.routingRules()
            let match = resolved.match(address)
            let accepted = resolved.accepts(address).accepted
            if json {
                try Output.json(TestJSON(address: address, accepted: accepted, rule: match.map { RuleJSON(number: $0.number, rule: $0.rule) }))
            } else if let match {
                print("\(address): rule \(match.number), \(match.rule.pattern) (\(match.rule.kind) match, \(match.rule.origin))")
                print("  → \(match.rule.actionDescription)")
                print(accepted ? "  Accepted at RCPT." : "  Refused at RCPT with 550 5.1.1.")
            } else {
                print("\(address): no rule matches; refused at RCPT with 550 5.1.1.")
            }
            if !accepted { throw ExitCode(1) }
        }
    }

    struct RuleJSON: Encodable {
        let number: Int
        let pattern: String
        let kind: String
        let action: String
        let directive: String?
        let reason: String?
        let origin: String

        init(number: Int, rule: RoutingRule) {
            self.number = number
            pattern = rule.pattern
            kind = rule.kind
            origin = rule.origin
            switch rule.action {
            case .searchSheets: (action, directive, reason) = ("search", nil, nil)
            case .applyDirective(let id): (action, directive, reason) = ("directive", id.rawValue, nil)
            case .refuse(let why): (action, directive, reason) = ("refuse", nil, why)
            }
        }
    }

    struct TestJSON: Encodable {
        let address: String
        let accepted: Bool
        let rule: RuleJSON?
    }
}

/// `waybill smtp-password`: a hash for `smtp_users`, from a password read on standard input.
struct SMTPPasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtp-password",
        abstract: "Hash a password for smtp_users (reads the password from standard input).")

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw WaybillError(.configError, "no password on standard input")
        }
        print(PasswordHash.make(password: line).encoded)
    }
}
