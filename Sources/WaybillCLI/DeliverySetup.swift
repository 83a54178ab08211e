import Foundation
import Logging
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore

/// Settings of the delivery queue and its transports (README, "Delivery").
extension SettingKey {
    /// `host:port` of the relay every mail goes through (documents, relayed mail, notices).
    public static let smarthost = SettingKey("smarthost")
    /// `starttls` (default; `tls` when the port is 465) or `none` (a relay on this machine only).
    public static let smarthostSecurity = SettingKey("smarthost_security")
    public static let smarthostUser = SettingKey("smarthost_user")
    /// A file holding the smarthost password (mode 0600), never the password itself.
    public static let smarthostPasswordFile = SettingKey("smarthost_password_file")
    /// A PEM file of CA certificates to trust for the smarthost and webhooks instead of the system's.
    public static let trustRoots = SettingKey("trust_roots")
    /// Envelope sender and From of the documents Waybill mails. Default: waybill@<hostname>.
    public static let mailFrom = SettingKey("mail_from")
    public static let retryFirstDelay = SettingKey("retry_first_delay")
    public static let retryMaxDelay = SettingKey("retry_max_delay")
    public static let retryGiveUp = SettingKey("retry_give_up")
    public static let notices = SettingKey("notices")
    public static let deliveryWorkers = SettingKey("delivery_workers")
    /// Where people make routing sheets, named in failure notices.
    public static let sheetsURL = SettingKey("sheets_url")
    /// How long the scans of delivered mail are kept for viewing in the web app (`0`: none). Default: 30d.
    public static let keepScans = SettingKey("keep_scans")

    static let deliveryKeys: [SettingKey] = [
        smarthost, smarthostSecurity, smarthostUser, smarthostPasswordFile, trustRoots, mailFrom, retryFirstDelay, retryMaxDelay,
        retryGiveUp, notices, deliveryWorkers, sheetsURL, keepScans,
    ]
}

extension Settings {
    func duration(_ key: SettingKey, default fallback: String) throws -> Duration {
        let text = values[key].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
        guard let seconds = TimeSpec.parseDuration(text) ?? Int(text), seconds > 0 else {
            throw WaybillError(.configError, "\(key.key) must be a duration such as 90s, 5m, 4h or 4d, not '\(text)'")
        }
        return .seconds(seconds)
    }

    /// `keep_scans`: a duration, or 0 to keep no scans after delivery.
    func keepScans() throws -> TimeInterval {
        let text = values[.keepScans].flatMap { $0.isEmpty ? nil : $0 } ?? "30d"
        if text == "0" { return 0 }
        guard let seconds = TimeSpec.parseDuration(text) ?? Int(text), seconds > 0 else {
            throw WaybillError(.configError, "keep_scans must be a duration such as 30d, or 0, not '\(text)'")
        }
        return TimeInterval(seconds)
    }

    func retrySchedule() throws -> RetrySchedule {
        RetrySchedule(
            firstDelay: try duration(.retryFirstDelay, default: "5m"), maximumDelay: try duration(.retryMaxDelay, default: "4h"),
            giveUp: try duration(.retryGiveUp, default: "4d"))
    }

    func deliveryOptions() throws -> DeliveryOptions {
        let hostname = values[.hostname] ?? "localhost"
        let mailFrom = values[.mailFrom].flatMap { $0.isEmpty ? nil : $0 }
        if let mailFrom, !Destination.isValidEmail(mailFrom) {
            throw WaybillError(.configError, "mail_from '\(mailFrom)' is not an email address")
        }
        return DeliveryOptions(
            schedule: try retrySchedule(), hostname: hostname, mailFrom: mailFrom,
            notices: values[.notices]?.isEmpty == false ? try bool(.notices) : true, localDomains: list(.domains),
            sheetsURL: values[.sheetsURL].flatMap { $0.isEmpty ? nil : $0 },
            webhookAllowList: (values[.allowWebhook] ?? "").split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty })
    }

    /// The smarthost, or nil when none is configured (mail then waits in the queue).
    func smarthost() throws -> Smarthost? {
        guard let text = values[.smarthost], !text.trimmingSpaces().isEmpty else { return nil }
        let security: Smarthost.Security?
        switch values[.smarthostSecurity]?.lowercased() {
        case nil, "": security = nil
        case "starttls": security = .starttls
        case "tls", "ssl", "implicit": security = .tls
        case "none", "plain": security = Smarthost.Security.none
        case let other?: throw WaybillError(.configError, "smarthost_security must be starttls, tls or none, not '\(other)'")
        }
        var password: String?
        if let file = values[.smarthostPasswordFile], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw WaybillError(.configError, "cannot read smarthost_password_file \(file)")
            }
            let mode = ((try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? NSNumber)?.intValue ?? 0
            guard mode & 0o077 == 0 else {
                throw WaybillError(.configError, "smarthost_password_file \(file) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
            }
            password = text.trimmingCharacters(in: .newlines)
        }
        let user = values[.smarthostUser].flatMap { $0.isEmpty ? nil : $0 }
        if (user == nil) != (password == nil) {
            throw WaybillError(.configError, "smarthost_user and smarthost_password_file go together")
        }
        var host = try Smarthost(parsing: text, security: security, username: user, password: password, heloName: values[.hostname] ?? "localhost")
        host.trustRoots = values[.trustRoots].flatMap { $0.isEmpty ? nil : $0 }
        return host
    }
}

extension CommandContext {
    /// The pipeline every command routes with, its transports from the settings. Webhooks are
    /// posted only where `webhooks` is given (the delivery queue's processes); elsewhere they wait
    /// in the queue like any delivery that is not a folder.
    func pipeline(
        rules: RoutingRules, batchRules: BatchRules = BatchRules(), webhooks: WebhookTransport? = nil,
        onQueued: @escaping @Sendable () -> Void = {}, logger: Logger = Logger(label: "waybill.ingest"),
        metrics: Metrics = Metrics()
    ) throws -> Pipeline {
        var pipeline = Pipeline(
            store: try store(), dataDirectory: data, rules: rules, batchRules: batchRules,
            folders: FolderTransport(resolver: FolderResolver(roots: policy.folderRoots)),
            smtp: try settings.smarthost().map { SMTPClient(smarthost: $0) }, webhooks: webhooks,
            delivery: try settings.deliveryOptions(), onQueued: onQueued, logger: logger, metrics: metrics)
        pipeline.keepScans = try settings.keepScans()
        return pipeline
    }

    /// The webhook transport, signing with the data directory's webhook secret (made on first use, mode 0600).
    func webhookTransport() throws -> WebhookTransport {
        WebhookTransport(
            signer: WebhookSigner(secret: try data.loadOrCreateSecret(named: "webhook-secret")),
            trustRoots: settings[.trustRoots].flatMap { $0.isEmpty ? nil : $0 })
    }
}
