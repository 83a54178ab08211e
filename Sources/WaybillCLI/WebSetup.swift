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

    static let webKeys: [SettingKey] = [httpHost, httpPort]
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
    func webConfiguration(pipeline: Pipeline) throws -> WebConfiguration {
        let resolver = FolderResolver(roots: policy.folderRoots)
        let context = self
        return WebConfiguration(
            store: try store(), keys: try keys(), policy: policy, template: { try context.locateTemplate() },
            scanAddress: scanAddress,
            checkDestination: { destination in
                if case .folder = destination { _ = try resolver.resolve(destination) }
            },
            quarantine: QuarantineDesk(pipeline: pipeline), queue: QueueDesk(pipeline: pipeline))
    }
}
