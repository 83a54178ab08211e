import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillSMTP
import WaybillStore
import WaybillWeb

/// `waybill serve`: the SMTP server, the worker behind it and the web app, until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Accept scans by SMTP and route them.",
        discussion: """
            Listens for SMTP (port 2525 by default), accepts mail for the addresses the routing rules \
            accept, spools it durably and routes it: documents after each routing sheet go to the \
            directive's destinations; refusals go to quarantine (see 'waybill quarantine'). \
            The web app's JSON API, /health and /metrics listen on HTTP (port 8080 by default). \
            SIGTERM stops accepting, finishes the messages in hand and leaves the rest spooled for the next start.
            """)

    @OptionGroup var settings: SettingsOptions
    @Option(help: "Address to listen on. Env: WAYBILL_SMTP_HOST. Default: 0.0.0.0.") var smtpHost: String?
    @Option(help: "SMTP port. Env: WAYBILL_SMTP_PORT. Default: 2525.") var smtpPort: String?
    @Option(help: "Messages routed at once. Env: WAYBILL_WORKERS. Default: 2.") var workers: String?
    @Option(help: "Routing rules, PATTERN=ACTION, comma-separated. Env: WAYBILL_RULES.") var rules: String?
    @Option(help: "Address the web app listens on. Env: WAYBILL_HTTP_HOST. Default: 0.0.0.0.") var httpHost: String?
    @Option(help: "Web app port (0: any free port). Env: WAYBILL_HTTP_PORT. Default: 8080.") var httpPort: String?

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var extra: [SettingKey: String] = [:]
        extra[.smtpHost] = smtpHost
        extra[.smtpPort] = smtpPort
        extra[.workers] = workers
        extra[.rules] = rules
        extra[.httpHost] = httpHost
        extra[.httpPort] = httpPort
        let context = try CommandContext(settings, extraFlags: extra)
        let settings = context.settings
        let logger = Logger(label: "waybill")
        _ = try context.keys()
        let rules = try settings.routingRules()
        let spool: Spool
        do { spool = try Spool(directory: context.data.url.appendingPathComponent("spool")) } catch {
            throw WaybillError(.ioError, "\(error)")
        }
        // Every setting is checked before the webhook client exists: it must be shut down on
        // every way out once it does (a debug build traps on one that is not).
        let smtp = try self.smtpConfiguration(settings)
        let smtpPort = try settings.integer(.smtpPort, in: 0...65535)
        let httpPort = try context.httpPort()
        let workers = try settings.integer(.workers, in: 1...64)
        let deliveryWorkers = try settings.integer(.deliveryWorkers, in: 1...64, default: 4)
        let batchRules = BatchRules(firstPageMustBeSheet: try settings.bool(.firstPageMustBeSheet))
        let webhooks = try context.webhookTransport()
        let queueBox = QueueBox()
        // One registry for every service: /metrics writes what each of them counted.
        let metrics = Metrics()
        let pipeline: Pipeline
        let webConfiguration: WebConfiguration
        do {
            pipeline = try context.pipeline(
                rules: rules, batchRules: batchRules, webhooks: webhooks, onQueued: { queueBox.queue?.wake() },
                logger: Logger(label: "waybill.ingest"), metrics: metrics)
            webConfiguration = try context.webConfiguration(pipeline: pipeline, metrics: metrics)
        } catch {
            try? await webhooks.shutdown()
            throw error
        }
        let deliveryQueue = DeliveryQueue(
            deliverer: pipeline.deliverer, concurrency: deliveryWorkers, logger: Logger(label: "waybill.queue"))
        queueBox.queue = deliveryQueue
        if pipeline.smtp == nil {
            logger.warning("no smarthost configured (WAYBILL_SMARTHOST): mail deliveries and notices wait in the queue")
        }
        let worker = SpoolWorker(
            pipeline: pipeline, spool: spool, concurrency: workers,
            logger: Logger(label: "waybill.worker"))
        let host = settings[.smtpHost] ?? "0.0.0.0"
        let server = SMTPServer(
            host: host, port: smtpPort, configuration: smtp, spool: spool,
            recipientPolicy: { recipient in
                // Refused only if every outcome is a refusal: attachments and size are not known yet.
                let decision = rules.decide(
                    RoutingContext(
                        recipient: recipient.recipient, sender: recipient.sender, authenticatedUser: recipient.authenticatedUser,
                        clientAddress: recipient.clientAddress, size: recipient.declaredSize))
                return decision.mayAccept ? .accept : .refuse(decision.reason)
            },
            onSpooled: { worker.enqueue($0) }, logger: Logger(label: "waybill.smtp"), metrics: metrics)
        let httpHost = context.httpHost
        let web = WebApp.application(
            webConfiguration, host: httpHost, port: httpPort,
            logger: Logger(label: "waybill.http"),
            onListening: { port in logger.info("http listening on \(httpHost):\(port)") })
        for (number, rule) in rules.rules.enumerated() {
            logger.info("routing rule \(number + 1): \(rule.pattern) → \(rule.actionDescription) (\(rule.origin))")
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                // Shut down in reverse order: the listener stops accepting first, then the
                // worker finishes the messages in hand.
                services: [
                    .init(service: DeliveryService(queue: deliveryQueue)),
                    .init(service: WorkerService(worker: worker)),
                    // A listener that fails (its port taken) stops the whole service the
                    // graceful way, and `serve` exits non-zero with the reason.
                    .init(
                        service: HTTPService(application: web, host: httpHost, port: httpPort),
                        successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup),
                    .init(
                        service: SMTPService(server: server, host: host, logger: logger),
                        successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            try? await webhooks.shutdown()
            throw error
        }
        try? await webhooks.shutdown()
        logger.info("stopped")
    }

    func smtpConfiguration(_ settings: Settings) throws -> SMTPConfiguration {
        var configuration = SMTPConfiguration(hostname: settings[.hostname] ?? "localhost")
        configuration.maximumMessageSize = try settings.integer(.maxMessageSize, in: 1024...(4 << 30))
        if let certificate = settings[.tlsCertificate], !certificate.isEmpty {
            guard let key = settings[.tlsKey], !key.isEmpty else {
                throw WaybillError(.configError, "tls_certificate is set but tls_key is not")
            }
            configuration.tls = SMTPTLS(certificateChainPath: certificate, privateKeyPath: key)
        }
        let users = settings.list(.smtpUsers)
        if !users.isEmpty {
            var encoded: [String: String] = [:]
            for entry in users {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else {
                    throw WaybillError(.configError, "smtp_users entries are USER=HASH (make a hash with 'waybill smtp-password')")
                }
                encoded[parts[0]] = parts[1]
            }
            configuration.authentication = try SMTPAuthentication(encodedUsers: encoded)
        }
        configuration.requireAuthentication = try settings.bool(.requireAuth)
        if configuration.requireAuthentication, configuration.authentication == nil {
            throw WaybillError(.configError, "require_auth is on but no smtp_users are configured")
        }
        configuration.allowPlaintextAuthentication = try settings.bool(.allowPlaintextAuth)
        guard let delay = Double(settings[.greetingDelay] ?? "1"), delay >= 0, delay <= 30 else {
            throw WaybillError(.configError, "greeting_delay must be a number of seconds from 0 to 30")
        }
        configuration.greetingDelay = .milliseconds(Int(delay * 1000))
        // The limits: each defaults to SMTPConfiguration's (documented in the README).
        configuration.maximumRecipients = try settings.integer(.maxRecipients, in: 1...10_000, default: configuration.maximumRecipients)
        configuration.maximumConnections = try settings.integer(.maxConnections, in: 1...100_000, default: configuration.maximumConnections)
        configuration.maximumConnectionsPerAddress = try settings.integer(
            .maxConnectionsPerAddress, in: 1...100_000, default: configuration.maximumConnectionsPerAddress)
        configuration.commandTimeout = try settings.duration(.commandTimeout, default: "5m")
        configuration.dataTimeout = try settings.duration(.dataTimeout, default: "3m")
        configuration.minimumDataRate = try settings.integer(.minDataRate, in: 0...1 << 30, default: configuration.minimumDataRate)
        return configuration
    }
}

/// The SMTP listener as a service: stops accepting on graceful shutdown.
struct SMTPService: Service {
    let server: SMTPServer
    let host: String
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run { port in
                    logger.info("listening on \(host):\(port)")
                }
            }
        } catch is CancellationError {
            logger.info("SMTP listener stopped")
        }
    }
}

/// The web app as a service: a port in use is said in words, not as a socket call's errno.
struct HTTPService<Inner: Service>: Service {
    let application: Inner
    let host: String
    let port: Int

    func run() async throws {
        do {
            try await application.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw WaybillError(
                .ioError, "HTTP port \(port) on \(host) is in use by another program (another 'waybill serve'?); stop it or set http_port")
        }
    }
}

/// The spool worker as a service: on graceful shutdown it takes no more messages and finishes
/// those in hand; the rest stay spooled for the next start.
struct WorkerService: Service {
    let worker: SpoolWorker

    func run() async throws {
        // Cancellation too (the group cancels when a service fails or shutdown times out):
        // `run` waits on a signal that task cancellation alone does not end.
        await withTaskCancellationOrGracefulShutdownHandler {
            await worker.run()
        } onCancelOrGracefulShutdown: {
            worker.finish()
        }
    }
}

/// The delivery queue as a service: on graceful shutdown it starts no more attempts and lets
/// those under way finish (a mail cut off mid-send would be sent again on the next start).
struct DeliveryService: Service {
    let queue: DeliveryQueue

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await queue.run()
        } onCancelOrGracefulShutdown: {
            queue.finish()
        }
    }
}

/// The pipeline wakes the delivery queue, which is made after it: set once before either runs.
final class QueueBox: @unchecked Sendable {
    // Written once, before the services start; read afterwards only.
    var queue: DeliveryQueue?
}
