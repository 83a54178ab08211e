public import ArgumentParser
import Foundation
public import WaybillCore

/// Every setting has a config-file key (`data_dir`), an environment variable (`WAYBILL_DATA_DIR`)
/// and a command-line flag (`--data-dir`); a flag beats the environment, which beats the file,
/// which beats the default. The mapping between the three spellings is mechanical.
public struct SettingKey: Sendable, Hashable {
    public let key: String
    public init(_ key: String) { self.key = key }
    public var environmentName: String { "WAYBILL_" + key.uppercased() }
    public var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    public static let dataDir = SettingKey("data_dir")
    public static let templates = SettingKey("templates")
    public static let template = SettingKey("template")
    public static let paper = SettingKey("paper")
    public static let allowWebhook = SettingKey("allow_webhook")
    public static let folderRoots = SettingKey("folder_roots")
    public static let scanAddress = SettingKey("scan_address")

    public static let smtpHost = SettingKey("smtp_host")
    public static let smtpPort = SettingKey("smtp_port")
    public static let hostname = SettingKey("hostname")
    public static let domains = SettingKey("domains")
    public static let rules = SettingKey("rules")
    /// `refuse` or `relay`: what an address at a configured domain that no rule matches means (docs/rules.md).
    public static let defaultRecipient = SettingKey("default_recipient")
    /// `on` or `off`: `folder.ROOT.SUB@DOMAIN` addresses deliver straight to that folder (docs/rules.md).
    public static let oneOffAddresses = SettingKey("one_off_addresses")
    public static let workers = SettingKey("workers")
    public static let maxMessageSize = SettingKey("max_message_size")
    public static let tlsCertificate = SettingKey("tls_certificate")
    public static let tlsKey = SettingKey("tls_key")
    public static let smtpUsers = SettingKey("smtp_users")
    public static let requireAuth = SettingKey("require_auth")
    public static let allowPlaintextAuth = SettingKey("allow_plaintext_auth")
    public static let greetingDelay = SettingKey("greeting_delay")
    public static let firstPageMustBeSheet = SettingKey("first_page_must_be_sheet")
    public static let maxRecipients = SettingKey("max_recipients")
    public static let maxConnections = SettingKey("max_connections")
    public static let maxConnectionsPerAddress = SettingKey("max_connections_per_address")
    public static let commandTimeout = SettingKey("command_timeout")
    public static let dataTimeout = SettingKey("data_timeout")
    public static let minDataRate = SettingKey("min_data_rate")

    public static let all: [SettingKey] = [
        dataDir, templates, template, paper, allowWebhook, folderRoots, scanAddress, smtpHost, smtpPort, hostname, domains, rules,
        defaultRecipient, oneOffAddresses, workers, maxMessageSize, tlsCertificate, tlsKey, smtpUsers, requireAuth,
        allowPlaintextAuth, greetingDelay, firstPageMustBeSheet, maxRecipients, maxConnections, maxConnectionsPerAddress,
        commandTimeout, dataTimeout, minDataRate,
    ] + deliveryKeys + webKeys
}

/// The flags shared by every command.
public struct SettingsOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (JSON); default ./waybill.json if it exists. Env: WAYBILL_CONFIG.")
    var config: String?

    @Option(name: .long, help: "Data directory (database, keys). Env: WAYBILL_DATA_DIR. Default: ./waybill-data.")
    var dataDir: String?

    @Option(name: .long, help: "Folder holding sheet templates. Env: WAYBILL_TEMPLATES.")
    var templates: String?

    @Option(name: .long, help: "Comma-separated webhook URL prefixes allowed as destinations. Env: WAYBILL_ALLOW_WEBHOOK.")
    var allowWebhook: String?

    @Option(name: .long, help: "Comma-separated folder roots, NAME=PATH. Env: WAYBILL_FOLDER_ROOTS. Default: archive=<data dir>/archive.")
    var folderRoots: String?

    @Option(name: .long, help: "Address printed on sheets for sending scans. Env: WAYBILL_SCAN_ADDRESS. Default: scan@localhost.")
    var scanAddress: String?

    public init() {}

    var flags: [SettingKey: String] {
        var flags: [SettingKey: String] = [:]
        flags[.dataDir] = dataDir
        flags[.templates] = templates
        flags[.allowWebhook] = allowWebhook
        flags[.folderRoots] = folderRoots
        flags[.scanAddress] = scanAddress
        return flags
    }

    func resolve(extraFlags: [SettingKey: String] = [:]) throws -> Settings {
        try Settings(
            flags: flags.merging(extraFlags) { $1 }, environment: ProcessInfo.processInfo.environment,
            configFile: config)
    }
}

/// Resolved settings for one run.
public struct Settings: Sendable {
    public let values: [SettingKey: String]
    public let configFile: String?

    public static let defaults: [SettingKey: String] = [
        .dataDir: "./waybill-data",
        .template: "standard",
        .paper: "letter",
        .allowWebhook: "",
        .scanAddress: "scan@localhost",
        .smtpHost: "0.0.0.0",
        .smtpPort: "2525",
        .hostname: "localhost",
        .workers: "2",
        .maxMessageSize: "52428800",
        .requireAuth: "false",
        .allowPlaintextAuth: "false",
        .greetingDelay: "1",
        .firstPageMustBeSheet: "true",
        .defaultRecipient: "refuse",
        .oneOffAddresses: "off",
    ]

    public init(flags: [SettingKey: String], environment: [String: String], configFile explicitFile: String?) throws {
        let fileFromEnvironment = environment["WAYBILL_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        var path = explicitFile ?? fileFromEnvironment
        if path == nil, FileManager.default.fileExists(atPath: "waybill.json") { path = "waybill.json" }
        let file = try path.map(Self.readFile) ?? [:]
        var values = Self.defaults
        for key in SettingKey.all {
            if let value = flags[key] ?? environment[key.environmentName] ?? file[key.key] {
                values[key] = value
            }
        }
        self.values = values
        self.configFile = path
    }

    /// A JSON object of settings; values are strings, or arrays of strings for list settings.
    static func readFile(_ path: String) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw WaybillError(.configError, "cannot read configuration file \(path): \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw WaybillError(.configError, "configuration file \(path) is not a JSON object")
        }
        var values: [String: String] = [:]
        let known = Set(SettingKey.all.map(\.key))
        for (key, value) in object {
            guard known.contains(key) else {
                throw WaybillError(
                    .configError, "configuration file \(path): unknown key '\(key)'; known keys: \(known.sorted().joined(separator: ", "))")
            }
            switch value {
            case let text as String: values[key] = text
            case let number as NSNumber: values[key] = number.stringValue
            case let list as [String]: values[key] = list.joined(separator: ",")
            case let map as [String: String]: values[key] = map.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: ",")
            case let objects as [[String: Any]] where key == SettingKey.rules.key:
                // Rules as objects keep their reasons' commas: carried as JSON text.
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
                values[key] = String(decoding: data, as: UTF8.self)
            default:
                throw WaybillError(
                    .configError, "configuration file \(path): '\(key)' must be a string, a number or a list of strings")
            }
        }
        return values
    }

    public subscript(key: SettingKey) -> String? { values[key] }

    public var dataDirectory: String { values[.dataDir] ?? "./waybill-data" }

    /// Folder roots: `archive` (under the data directory) unless configured otherwise.
    public func folderRoots() throws -> [String: String] {
        guard let text = values[.folderRoots], !text.isEmpty else {
            return ["archive": URL(fileURLWithPath: dataDirectory).appendingPathComponent("archive").standardizedFileURL.path]
        }
        var roots: [String: String] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw WaybillError(.configError, "folder root '\(entry)' must be NAME=PATH")
            }
            roots[parts[0]] = URL(fileURLWithPath: parts[1]).standardizedFileURL.path
        }
        return roots
    }

    public func destinationPolicy() throws -> DestinationPolicy {
        let prefixes = (values[.allowWebhook] ?? "").split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        return DestinationPolicy(folderRoots: try folderRoots(), webhookPrefixes: prefixes)
    }
}

extension Settings {
    func list(_ key: SettingKey) -> [String] {
        (values[key] ?? "").split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
    }

    func integer(_ key: SettingKey, in range: ClosedRange<Int>) throws -> Int {
        let text = values[key] ?? ""
        guard let value = Int(text.trimmingSpaces()), range.contains(value) else {
            throw WaybillError(.configError, "\(key.key) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }

    func bool(_ key: SettingKey) throws -> Bool {
        switch (values[key] ?? "").trimmingSpaces().lowercased() {
        case "1", "true", "yes", "on": return true
        case "", "0", "false", "no", "off": return false
        case let text: throw WaybillError(.configError, "\(key.key) must be true or false, not '\(text)'")
        }
    }

    /// The routing rules (docs/rules.md): the configured ones (`rules`: a compact `PATTERN=ACTION`
    /// list or a JSON list of rule objects), the one-off, built-in and default-recipient rules for
    /// the `domains`, checked against the destination policy and for open relays.
    public func routingRules() throws -> RoutingRules {
        let configured = try RoutingRule.rules(fromSetting: values[.rules] ?? "")
        let text = (values[.defaultRecipient] ?? "refuse").trimmingSpaces().lowercased()
        guard let defaultRecipient = RoutingRules.DefaultRecipient(rawValue: text.isEmpty ? "refuse" : text) else {
            throw WaybillError(.configError, "default_recipient must be refuse or relay, not '\(text)'")
        }
        return try RoutingRules(
            configured: configured, domains: list(.domains), defaultRecipient: defaultRecipient,
            oneOffAddresses: try bool(.oneOffAddresses), policy: try destinationPolicy())
    }
}
