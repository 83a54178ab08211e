import Foundation
import Testing
import WaybillCore

/// `/metrics` of a running `waybill serve` after real traffic: a scan routed to a folder and a
/// relay refused, read back by the Prometheus project's Python parser.
@Suite struct MetricsServeTests {
    /// The web app's port, from `http listening on HOST:PORT` in the log.
    static func httpPort(_ server: ServeTests.Server) throws -> Int {
        for _ in 0..<300 {
            let text = server.output
            if let range = text.range(of: #"http listening on [^:\s]+:(\d+)"#, options: .regularExpression),
                let port = Int(text[range].split(separator: ":").last!)
            {
                return port
            }
            usleep(100_000)
        }
        throw WaybillError(.ioError, "serve did not say its HTTP port: \(server.output)")
    }

    /// Sends the scan and a refused relay with smtplib, then reads `/metrics` until the routed
    /// message and its delivery attempt show (they are counted just after the file lands), and
    /// prints the samples as JSON: `[[name, labels, value], …]`, and the families' types.
    static let script = """
        import json, smtplib, sys, time, urllib.request
        from email.message import EmailMessage
        from prometheus_client.parser import text_string_to_metric_families
        smtp_port, http_port, scan = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
        msg = EmailMessage()
        msg["From"] = "mfp@office.example.com"; msg["To"] = "scan@localhost"; msg["Subject"] = "Scan"
        msg.set_content("Scanned.")
        msg.add_attachment(open(scan, "rb").read(), maintype="application", subtype="pdf", filename="SCAN0001.PDF")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.ehlo("mfp")
            s.send_message(msg)
            try:
                s.sendmail("a@b.example", ["victim@elsewhere.example"], "Subject: relay\\r\\n\\r\\nx\\r\\n")
                print("relay accepted", file=sys.stderr); sys.exit(1)
            except smtplib.SMTPRecipientsRefused:
                pass
        deadline = time.time() + 120
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as response:
                content_type = response.headers["Content-Type"]
                text = response.read().decode()
            types, samples = {}, []
            for family in text_string_to_metric_families(text):
                types[family.name] = family.type
                samples += [[s.name, s.labels, s.value] for s in family.samples]
            done = [s for s in samples if s[0] == "waybill_delivery_attempts_total" and s[2] > 0] and \\
                [s for s in samples if s[0] == "waybill_messages_routed_total" and s[2] > 0]
            if done or time.time() > deadline:
                break
            time.sleep(0.2)
        print(json.dumps({"contentType": content_type, "types": types, "samples": samples}))
        """

    @Test func metricsCountTheScanTheRefusalThePagesAndTheDelivery() throws {
        let cli = try CLI()
        let server = try ServeTests.Server(cli)
        let http = try Self.httpPort(server)
        let (_, scan) = try ServeTests().directiveAndScan(cli, folder: "metrics", labels: ["PAGE-M1", "PAGE-M2"])
        let run = try ServeTests.python(Self.script, [String(server.port), String(http), scan])
        try #require(run.status == 0, "\(run.stderr)\n\(server.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let types = try #require(json["types"] as? [String: String])
        var samples: [String: Double] = [:]
        for case let sample as [Any] in try #require(json["samples"] as? [Any]) {
            let labels = try #require(sample[1] as? [String: String]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            samples["\(sample[0])" + (labels.isEmpty ? "" : "{" + labels.joined(separator: ",") + "}")] =
                (sample[2] as? NSNumber)?.doubleValue
        }
        #expect((json["contentType"] as? String)?.hasPrefix("text/plain; version=0.0.4") == true)
        // The store's gauges and the live families side by side, each with its type.
        #expect(types["waybill_messages"] == "gauge" && types["waybill_delivery_queue_depth"] == "gauge")
        #expect(types["waybill_page_decode_seconds"] == "histogram" && types["waybill_smtp_refusals"] == "counter")

        #expect((samples["waybill_smtp_connections_total"] ?? 0) >= 1)
        #expect((samples["waybill_smtp_messages_total{outcome=accepted}"] ?? 0) >= 1, "\(samples)")
        #expect(samples["waybill_smtp_refusals_total{reason=recipient-refused}"] == 1, "\(samples)")
        #expect(samples["waybill_smtp_refusals_total{reason=too-large}"] == 0)
        #expect(samples["waybill_messages_routed_total{outcome=delivered}"] == 1, "\(server.output)")
        #expect(samples["waybill_messages_quarantined_total{reason=no-sheet}"] == 0)
        // The sheet, its blank back and two document pages.
        let pages = try #require(samples["waybill_pages_decoded_total"])
        #expect(pages == 4)
        #expect(samples["waybill_page_decode_seconds_count"] == pages)
        #expect(samples["waybill_page_decode_seconds_bucket{le=+Inf}"] == pages)
        #expect((samples["waybill_page_decode_seconds_sum"] ?? 0) > 0)
        #expect(samples["waybill_delivery_attempts_total{kind=document,outcome=delivered}"] == 1, "\(samples)")
        #expect(samples["waybill_delivery_queue_depth"] != nil)
        #expect(server.stop() == 0, "\(server.output)")
    }
}
