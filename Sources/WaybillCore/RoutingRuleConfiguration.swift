import Foundation

/// The `rules` setting, read into rules: a compact comma-separated `PATTERN=ACTION` list, or a JSON
/// list of objects with the keys below (docs/rules.md, "Configuration"). Unknown keys and values of
/// the wrong type are errors that name the rule and the key: a typo must never widen a rule.
struct RoutingRuleConfiguration: Decodable {
    static let keys = [
        "match", "from", "authenticated", "network", "attachments", "min_size", "max_size", "action", "directive", "reason",
        "failover", "stop", "comment",
    ]

    let rule: RoutingRule

    private struct Key: CodingKey {
        let stringValue: String
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container: KeyedDecodingContainer<Key>
        do { container = try decoder.container(keyedBy: Key.self) } catch {
            throw WaybillError(.configError, "a rule must be an object such as {\"match\": \"@scan.example.com\", \"action\": \"search\"}")
        }
        for key in container.allKeys where !Self.keys.contains(key.stringValue) {
            throw WaybillError(
                .configError, "unknown key '\(key.stringValue)'; a rule's keys are \(Self.keys.joined(separator: ", "))")
        }
        func value<T: Decodable>(_ name: String, _ type: T.Type, _ expected: String) throws -> T? {
            let key = Key(name)
            guard container.contains(key), (try? container.decodeNil(forKey: key)) != true else { return nil }
            guard let value = try? container.decode(type, forKey: key) else {
                throw WaybillError(.configError, "\"\(name)\" must be \(expected)")
            }
            return value
        }
        func size(_ name: String) throws -> Int? {
            if let number = try? value(name, Int.self, "") { return number }
            guard let text = try value(name, String.self, "a number of bytes or a size such as \"10MB\"") else { return nil }
            guard let bytes = RoutingRule.byteCount(text) else {
                throw WaybillError(.configError, "\"\(name)\": '\(text)' is not a size (bytes, or such as 500KB, 10MB, 1GB, 10MiB)")
            }
            return bytes
        }
        guard let match = try value("match", String.self, "a recipient pattern such as \"@scan.example.com\"") else {
            throw WaybillError(.configError, "\"match\" (the recipient pattern) is missing")
        }
        guard let actionText = try value("action", String.self, "an action such as \"search\"") else {
            throw WaybillError(.configError, "\"action\" is missing (search, directive:ID, relay, deliver:URI, one-off or refuse[:reason])")
        }
        let networkTexts: [String]
        if let list = try? value("network", [String].self, "") {
            networkTexts = list
        } else if let text = try value("network", String.self, "a network such as \"10.0.0.0/8\", or a list of them") {
            networkTexts = text.split(separator: ",").map(String.init)
        } else {
            networkTexts = []
        }
        var networks: [IPNetwork] = []
        for text in networkTexts {
            do { networks.append(try IPNetwork(text)) } catch { throw WaybillError(.configError, "\"network\": \(error.message)") }
        }
        let criteria = RoutingRule.Criteria(
            sender: try value("from", String.self, "a sender pattern such as \"*@example.com\""),
            authenticated: try value("authenticated", Bool.self, "true or false"), networks: networks,
            hasAttachments: try value("attachments", Bool.self, "true or false"), minSize: try size("min_size"),
            maxSize: try size("max_size"))
        let directive = try value("directive", String.self, "a directive id such as \"K7QM2-XR9PC\"")
        let reason = try value("reason", String.self, "a sentence")
        let failoverText = try value("failover", String.self, "an action such as \"directive:K7QM2-XR9PC\"")
        let stop = try value("stop", Bool.self, "true or false") ?? true
        let comment = try value("comment", String.self, "a string")

        func word(_ text: String?) -> String? { text?.trimmingSpaces().lowercased() }
        let bare = [word(actionText), word(failoverText)]
        if directive != nil, !bare.contains(where: { $0 == "directive" || $0 == "apply-directive" }) {
            throw WaybillError(.configError, "\"directive\" is given, but neither \"action\" nor \"failover\" is \"directive\"")
        }
        if directive != nil, bare.allSatisfy({ $0 == "directive" }) {
            throw WaybillError(.configError, "\"action\" and \"failover\" are both \"directive\": write directive:ID in each")
        }
        if reason != nil, !bare.contains(where: { $0 == "refuse" || $0 == "reject" }) {
            throw WaybillError(.configError, "\"reason\" is given, but neither \"action\" nor \"failover\" is \"refuse\"")
        }
        let failover = try failoverText.map { try RoutingRule.action($0, directive: directive, reason: reason) }
        if RoutingRule.isOneOff(actionText) {
            rule = try RoutingRule(oneOffPattern: match, criteria: criteria, failover: failover, stop: stop, comment: comment)
        } else {
            rule = try RoutingRule(
                pattern: match, criteria: criteria, action: try RoutingRule.action(actionText, directive: directive, reason: reason),
                failover: failover, stop: stop, comment: comment)
        }
    }
}

extension RoutingRule {
    /// Reads the `rules` setting: a JSON list of rule objects if it starts with `[`, else a
    /// comma-separated list of `PATTERN=ACTION`. Errors name the rule (1-based) and the key.
    public static func rules(fromSetting text: String) throws(WaybillError) -> [RoutingRule] {
        let text = text.trimmingSpaces()
        guard text.hasPrefix("[") else {
            var rules: [RoutingRule] = []
            for (index, entry) in text.split(separator: ",").map({ $0.trimmingSpaces() }).filter({ !$0.isEmpty }).enumerated() {
                do { rules.append(try RoutingRule(compact: entry)) } catch {
                    throw WaybillError(.configError, "rules: rule \(index + 1): \(Self.message(error))")
                }
            }
            return rules
        }
        let items: [Item]
        do { items = try JSONDecoder().decode([Item].self, from: Data(text.utf8)) } catch {
            throw WaybillError(.configError, "rules must be a JSON list of objects with \"match\" and \"action\" (\(error.localizedDescription))")
        }
        var rules: [RoutingRule] = []
        for (index, item) in items.enumerated() {
            switch item.result {
            case .success(let rule): rules.append(rule)
            case .failure(let error): throw WaybillError(.configError, "rules: rule \(index + 1): \(error.message)")
            }
        }
        return rules
    }

    /// One element of the list, decoded on its own so that one bad rule is reported by its number.
    private struct Item: Decodable {
        let result: Result<RoutingRule, WaybillError>

        init(from decoder: any Decoder) throws {
            do {
                result = .success(try RoutingRuleConfiguration(from: decoder).rule)
            } catch {
                result = .failure(WaybillError(.configError, RoutingRule.message(error)))
            }
        }
    }

    private static func message(_ error: any Error) -> String {
        (error as? WaybillError)?.message ?? "\(error)"
    }
}
