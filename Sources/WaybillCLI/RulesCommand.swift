import ArgumentParser
import Foundation
import WaybillCore

/// `waybill rules list|test`: the rules in order, and the decision trail for one message (docs/rules.md).
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Show the routing rules and test an address against them.",
        subcommands: [List.self, Test.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the routing rules in the order they are tried.")
        @OptionGroup var settings: SettingsOptions
        @Option(help: "Routing rules, PATTERN=ACTION, comma-separated, or a JSON list. Env: WAYBILL_RULES.") var rules: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let resolved = try CommandContext(settings, extraFlags: rules.map { [.rules: $0] } ?? [:]).settings.routingRules()
            if json {
                try Output.json(resolved.rules.enumerated().map { RuleJSON(number: $0.offset + 1, rule: $0.element) })
                return
            }
            for (index, rule) in resolved.rules.enumerated() {
                print("\(index + 1). \(rule.pattern)  (\(rule.kind), \(rule.origin))  → \(rule.actionDescription)")
                for line in Self.details(rule) { print("     \(line)") }
            }
            if resolved.defaultRecipient == .relay {
                print("Other addresses at \(resolved.domains.joined(separator: ", ")) are relayed (default_recipient relay).")
            }
            print("Any other address is refused at RCPT (550 5.1.1): Waybill is never an open relay.")
        }

        static func details(_ rule: RoutingRule) -> [String] {
            var lines: [String] = []
            if !rule.criteria.isEmpty { lines.append("when " + rule.criteria.descriptions.joined(separator: ", ")) }
            if let failover = rule.failoverDescription { lines.append("if that fails: \(failover)") }
            if !rule.stop { lines.append("then goes on to the next rules (stop: false)") }
            if rule.fallback { lines.append("only when no earlier rule matched") }
            if let comment = rule.comment { lines.append("# \(comment)") }
            return lines
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test",
            abstract: "Explain what happens to mail for ADDRESS: every rule considered, and the decision.",
            discussion: """
                Without --attachments and --size, rules that need them are undecided, as at RCPT time: the \
                address is accepted at RCPT if any possible outcome accepts it. Exit status 0: accepted at \
                RCPT; 1: refused.
                """)
        @OptionGroup var settings: SettingsOptions
        @Option(help: "Routing rules, PATTERN=ACTION, comma-separated, or a JSON list. Env: WAYBILL_RULES.") var rules: String?
        @Argument(help: "A recipient address, as a scanner would send to.") var address: String
        @Option(help: "The envelope sender (MAIL FROM); <> for the null sender. Default: not known.") var from: String?
        @Option(help: "The SMTP AUTH user of the session. Default: not authenticated.") var auth: String?
        @Option(help: "The client's IP address. Default: not known.") var client: String?
        @Option(help: "The message size: bytes, or such as 10MB. Default: not known.") var size: String?
        @Option(help: "Whether the message has attachments: yes or no. Default: not known.") var attachments: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if let client, !IPNetwork.isAddress(client) { throw ValidationError("--client: '\(client)' is not an IPv4 or IPv6 address") }
            if let size, RoutingRule.byteCount(size) == nil { throw ValidationError("--size: '\(size)' is not a size (bytes, or such as 10MB)") }
            if let attachments, Self.yesNo(attachments) == nil { throw ValidationError("--attachments: yes or no, not '\(attachments)'") }
        }

        static func yesNo(_ text: String) -> Bool? {
            switch text.lowercased() {
            case "yes", "y", "true", "1": true
            case "no", "n", "false", "0": false
            default: nil
            }
        }

        var context: RoutingContext {
            RoutingContext(
                recipient: address, sender: from.map { $0 == "<>" ? "" : $0 }, authenticatedUser: auth, clientAddress: client,
                hasAttachments: attachments.flatMap(Self.yesNo), size: size.flatMap(RoutingRule.byteCount))
        }

        func run() throws {
            let resolved = try CommandContext(settings, extraFlags: rules.map { [.rules: $0] } ?? [:]).settings.routingRules()
            let context = context
            let decision = resolved.decide(context)
            if json {
                try Output.json(TestJSON(context: context, decision: decision, rules: resolved))
            } else {
                print(Self.text(context: context, decision: decision))
            }
            if !decision.mayAccept { throw ExitCode(1) }
        }

        static func text(context: RoutingContext, decision: RoutingDecision) -> String {
            var known: [String] = []
            known.append(context.sender.map { "from \($0.isEmpty ? "<>" : $0)" } ?? "sender not known")
            known.append(context.authenticatedUser.map { "authenticated as \($0)" } ?? "not authenticated")
            known.append(context.clientAddress.map { "client \($0)" } ?? "client not known")
            known.append(context.hasAttachments.map { $0 ? "with attachments" : "without attachments" } ?? "attachments not known")
            known.append(context.size.map { "size \($0) bytes" } ?? "size not known")
            var lines = ["\(context.recipient): \(known.joined(separator: ", "))"]
            for step in decision.trail {
                var line = "  rule \(step.number)  \(step.rule) → \(step.action): \(step.outcome.rawValue) (\(step.reasons.joined(separator: "; ")))"
                if let effect = step.effect { line += "; \(effect)" }
                lines.append(line)
            }
            if decision.notConsidered > 0 {
                let first = decision.trail.count + 1
                let last = first + decision.notConsidered - 1
                lines.append(first == last ? "  rule \(first) not considered" : "  rules \(first)–\(last) not considered")
            }
            if decision.accepted {
                for (index, step) in decision.actions.enumerated() {
                    var line = "\(index == 0 ? "Decision:" : "     and:") rule \(step.number), \(step.rule.pattern) (\(step.rule.kind) match, \(step.rule.origin))"
                    line += " → \(step.actionDescription)"
                    if let failover = step.failoverDescription { line += "; if that fails: \(failover)" }
                    lines.append(line)
                }
                lines.append("  Accepted at RCPT.")
            } else if decision.mayAccept {
                lines.append("Decision: not yet: \(decision.reason)")
                lines.append("  Accepted at RCPT; the worker decides once the message is known.")
            } else if let number = decision.refusingRule {
                lines.append("Decision: refused by rule \(number): \(decision.refusal ?? "")")
                lines.append("  Refused at RCPT with 550 5.1.1.")
            } else {
                lines.append("Decision: no rule matches; refused at RCPT with 550 5.1.1.")
            }
            return lines.joined(separator: "\n")
        }
    }

    struct RuleJSON: Encodable {
        let number: Int
        let pattern: String
        let kind: String
        let summary: String
        let action: String
        let directive: String?
        let destination: String?
        let reason: String?
        let failover: String?
        let from: String?
        let authenticated: Bool?
        let network: [String]?
        let attachments: Bool?
        let min_size: Int?
        let max_size: Int?
        let stop: Bool
        let fallback: Bool
        let comment: String?
        let origin: String

        init(number: Int, rule: RoutingRule) {
            self.number = number
            pattern = rule.pattern
            kind = rule.kind
            summary = rule.summary
            origin = rule.origin
            (action, directive, destination, reason) = Self.parts(rule.oneOff ? nil : rule.action)
            failover = rule.failover?.spelling
            from = rule.criteria.sender
            authenticated = rule.criteria.authenticated
            network = rule.criteria.networks.isEmpty ? nil : rule.criteria.networks.map(\.text)
            attachments = rule.criteria.hasAttachments
            min_size = rule.criteria.minSize
            max_size = rule.criteria.maxSize
            stop = rule.stop
            fallback = rule.fallback
            comment = rule.comment
        }

        /// The action's name and its argument in the field scripts read (`directive`, `destination`, `reason`).
        static func parts(_ action: RoutingRule.Action?) -> (String, String?, String?, String?) {
            switch action {
            case nil: ("one-off", nil, nil, nil)
            case .searchSheets?: ("search", nil, nil, nil)
            case .applyDirective(let id)?: ("directive", id.rawValue, nil, nil)
            case .relay?: ("relay", nil, nil, nil)
            case .deliverTo(let destination)?: ("deliver", nil, destination.uri, nil)
            case .refuse(let why)?: ("refuse", nil, nil, why)
            }
        }
    }

    struct TestJSON: Encodable {
        struct Context: Encodable {
            let sender: String?
            let authenticated_user: String?
            let client: String?
            let attachments: Bool?
            let size: Int?
        }

        struct Action: Encodable {
            let rule: Int
            let action: String
            let directive: String?
            let destination: String?
            let description: String
            let failover: String?
            let failover_description: String?
        }

        struct Step: Encodable {
            let rule: Int
            let summary: String
            let origin: String
            let outcome: String
            let reasons: [String]
            let action: String
            let effect: String?
        }

        let address: String
        /// The RCPT answer, as the exit status.
        let accepted: Bool
        /// false while a rule on the way needs what is not known (attachments, size, sender, client).
        let complete: Bool
        let context: Context
        /// The deciding rule: the first action's, or the refusing one's.
        let rule: RuleJSON?
        let actions: [Action]
        let refusal: String?
        let reason: String
        let trail: [Step]
        let not_considered: Int

        init(context: RoutingContext, decision: RoutingDecision, rules: RoutingRules) {
            address = context.recipient
            accepted = decision.mayAccept
            complete = decision.isComplete
            self.context = Context(
                sender: context.sender, authenticated_user: context.authenticatedUser, client: context.clientAddress,
                attachments: context.hasAttachments, size: context.size)
            let number = decision.actions.first?.number ?? decision.refusingRule
            rule = number.map { RuleJSON(number: $0, rule: rules.rules[$0 - 1]) }
            actions = decision.actions.map { step in
                let (name, directive, destination, _) = RuleJSON.parts(step.action)
                return Action(
                    rule: step.number, action: name, directive: directive, destination: destination, description: step.actionDescription,
                    failover: step.failover?.spelling, failover_description: step.failoverDescription)
            }
            refusal = decision.refusal
            reason = decision.reason
            trail = decision.trail.map {
                Step(
                    rule: $0.number, summary: $0.rule, origin: $0.origin, outcome: $0.outcome.rawValue, reasons: $0.reasons, action: $0.action,
                    effect: $0.effect)
            }
            not_considered = decision.notConsidered
        }
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
