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

    public static let all: [SettingKey] = [dataDir, templates, template, paper, allowWebhook, folderRoots, scanAddress]
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
            default: throw WaybillError(.configError, "configuration file \(path): '\(key)' must be a string or a list of strings")
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
