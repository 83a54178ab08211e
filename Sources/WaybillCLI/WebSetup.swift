import Foundation
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore
import WaybillWeb

/// Settings of the web app and its JSON API (`waybill serve`).
extension SettingKey {
    /// Address the HTTP service listens on. Default: 0.0.0.0.
    public static let httpHost = SettingKey("http_host")
    /// HTTP port. Default: 8080; 0 picks any free port (logged as `http listening on HOST:PORT`).
    public static let httpPort = SettingKey("http_port")
    /// `Secure` on the web app's cookies: `true` behind HTTPS, `false` for plain HTTP, `auto`
    /// (default) when the request says it came over HTTPS (`X-Forwarded-Proto: https` from a proxy).
    public static let httpSecureCookies = SettingKey("http_secure_cookies")

    static let webKeys: [SettingKey] = [httpHost, httpPort, httpSecureCookies]
}

extension CommandContext {
    var httpHost: String { settings[.httpHost].flatMap { $0.isEmpty ? nil : $0 } ?? "0.0.0.0" }

    func httpPort() throws -> Int {
        guard let text = settings[.httpPort], !text.isEmpty else { return 8080 }
        return try settings.integer(.httpPort, in: 0...65535)
    }

    /// The web app's dependencies: the store, the signing keys and the destination policy that
    /// `directive create` uses, folder destinations resolved under their root as it does; the
    /// operator's desks over `pipeline` (the one `serve` routes with, whose `onQueued` wakes the
    /// delivery queue).
    func webConfiguration(pipeline: Pipeline, metrics: Metrics? = nil) throws -> WebConfiguration {
        let resolver = FolderResolver(roots: policy.folderRoots)
        let context = self
        var configuration = WebConfiguration(
            store: try store(), keys: try keys(), policy: policy, template: { try context.locateTemplate() },
            scanAddress: scanAddress,
            checkDestination: { destination in
                if case .folder = destination { _ = try resolver.resolve(destination) }
            },
            metrics: metrics, quarantine: QuarantineDesk(pipeline: pipeline), queue: QueueDesk(pipeline: pipeline))
        configuration.sessionSecret = try data.loadOrCreateSecret(named: "session-secret")
        switch (settings[.httpSecureCookies] ?? "auto").lowercased() {
        case "auto", "": configuration.secureCookies = nil
        case "1", "true", "yes", "on": configuration.secureCookies = true
        case "0", "false", "no", "off": configuration.secureCookies = false
        case let other: throw WaybillError(.configError, "http_secure_cookies must be auto, true or false, not '\(other)'")
        }
        let rules = try settings.routingRules()
        let policy = policy
        let domains = settings.list(.domains)
        configuration.settingsSummary = {
            [
                SettingsSection(
                    title: "Routing rules (rules, default_recipient)",
                    items: rules.rules.enumerated().map { "\($0.offset + 1). \($0.element.pattern) → \($0.element.actionDescription)" },
                    empty: "none"),
                SettingsSection(title: "Domains (domains)", items: domains, empty: "none: notices go to authenticated senders only"),
                SettingsSection(
                    title: "Folder roots (folder_roots)", items: policy.folderRoots.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" },
                    empty: "none: no folder destinations"),
                SettingsSection(
                    title: "Webhook allow-list (allow_webhook)", items: policy.webhookPrefixes, empty: "none: no webhook destinations"),
            ]
        }
        return configuration
    }
}
