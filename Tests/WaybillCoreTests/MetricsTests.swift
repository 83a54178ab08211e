import Foundation
import Testing
import WaybillCore

/// The registry and its text: counts, the histogram's cumulative buckets, escaping, and the
/// whole output read back by the Prometheus project's own Python parser.
@Suite struct MetricsTests {
    /// Samples parsed by `prometheus_client.parser` (Debian's python3-prometheus-client).
    struct Parsed {
        var types: [String: String] = [:]
        var samples: [(name: String, labels: [String: String], value: Double)] = []

        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
    }

    static let parser = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = {"types": {}, "samples": []}
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):
            out["types"][family.name] = family.type
            for s in family.samples:
                out["samples"].append([s.name, s.labels, s.value])
        print(json.dumps(out))
        """

    static func parse(_ text: String) throws -> Parsed {
        let file = NSTemporaryDirectory() + "metrics-\(UUID().uuidString).txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", parser, file]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "the parser refused the text (python3-prometheus-client installed?): \(errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var parsed = Parsed()
        parsed.types = try #require(json["types"] as? [String: String])
        for case let sample as [Any] in try #require(json["samples"] as? [Any]) {
            let name = try #require(sample[0] as? String)
            let labels = try #require(sample[1] as? [String: String])
            let value = try #require((sample[2] as? NSNumber)?.doubleValue)
            parsed.samples.append((name, labels, value))
        }
        return parsed
    }

    static func record(_ metrics: Metrics) {
        metrics.smtpConnectionOpened()
        metrics.smtpConnectionOpened()
        metrics.smtpMessage(.accepted)
        metrics.smtpRefused(.recipientRefused)
        metrics.smtpRefused(.recipientRefused)
        metrics.smtpRefused(.tooLarge)
        metrics.messageDelivered()
        metrics.messageQuarantined(reason: "no-sheet")
        metrics.messageQuarantined(reason: "we\"ird\\reason\nx")
        for milliseconds in [3, 7, 7, 300, 10_000] { metrics.pageDecoded(in: .milliseconds(milliseconds)) }
        metrics.deliveryAttempt(kind: .document, outcome: .delivered)
        metrics.deliveryAttempt(kind: .notice, outcome: .retry)
        metrics.deliveryAttempt(kind: .notice, outcome: .dead)
    }

    @Test func theHistogramIsCumulativeWithItsSumAndCount() {
        let metrics = Metrics()
        Self.record(metrics)
        let counts = metrics.snapshot
        #expect(counts.pagesDecoded == 5 && counts.decodeCount == 5)
        #expect(abs(counts.decodeSeconds - 10.317) < 1e-9)
        let text = metrics.render()
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("waybill_page_decode_seconds_bucket") }
        #expect(
            buckets == [
                #"waybill_page_decode_seconds_bucket{le="0.005"} 1"#, #"waybill_page_decode_seconds_bucket{le="0.01"} 3"#,
                #"waybill_page_decode_seconds_bucket{le="0.025"} 3"#, #"waybill_page_decode_seconds_bucket{le="0.05"} 3"#,
                #"waybill_page_decode_seconds_bucket{le="0.1"} 3"#, #"waybill_page_decode_seconds_bucket{le="0.25"} 3"#,
                #"waybill_page_decode_seconds_bucket{le="0.5"} 4"#, #"waybill_page_decode_seconds_bucket{le="1"} 4"#,
                #"waybill_page_decode_seconds_bucket{le="2.5"} 4"#, #"waybill_page_decode_seconds_bucket{le="5"} 4"#,
                #"waybill_page_decode_seconds_bucket{le="+Inf"} 5"#,
            ])
        #expect(text.contains("\nwaybill_page_decode_seconds_count 5\n"))
        #expect(text.contains("\nwaybill_page_decode_seconds_sum 10.317"))
        // A value exactly on a bound falls in that bucket (le: less than or equal).
        let edge = Metrics()
        edge.pageDecoded(in: .milliseconds(5))
        #expect(edge.snapshot.decodeBucketCounts.first == 1)
    }

    @Test func labelValuesAndHelpAreEscaped() {
        let metrics = Metrics()
        metrics.messageQuarantined(reason: "we\"ird\\reason\nx")
        #expect(metrics.render().contains(#"waybill_messages_quarantined_total{reason="we\"ird\\reason\nx"} 1"#))
        var writer = PrometheusWriter()
        writer.family("x", .gauge, "a \\ b\nc")
        #expect(writer.output == "# HELP x a \\\\ b\\nc\n# TYPE x gauge\n")
    }

    @Test func aPrometheusParserReadsEveryFamilyAndValue() throws {
        let metrics = Metrics()
        let empty = try Self.parse(metrics.render())
        // Every known series is there at 0 before its first event.
        #expect(empty.value("waybill_smtp_refusals_total", ["reason": "timeout"]) == 0)
        #expect(empty.value("waybill_messages_quarantined_total", ["reason": "forged"]) == 0)
        #expect(empty.value("waybill_delivery_attempts_total", ["kind": "relay", "outcome": "dead"]) == 0)
        #expect(empty.value("waybill_page_decode_seconds_bucket", ["le": "+Inf"]) == 0)

        Self.record(metrics)
        let parsed = try Self.parse(metrics.render())
        #expect(
            parsed.types == [
                "waybill_smtp_connections": "counter", "waybill_smtp_messages": "counter", "waybill_smtp_refusals": "counter",
                "waybill_messages_routed": "counter", "waybill_messages_quarantined": "counter", "waybill_pages_decoded": "counter",
                "waybill_page_decode_seconds": "histogram", "waybill_delivery_attempts": "counter",
            ])
        #expect(parsed.value("waybill_smtp_connections_total") == 2)
        #expect(parsed.value("waybill_smtp_messages_total", ["outcome": "accepted"]) == 1)
        #expect(parsed.value("waybill_smtp_messages_total", ["outcome": "refused"]) == 0)
        #expect(parsed.value("waybill_smtp_refusals_total", ["reason": "recipient-refused"]) == 2)
        #expect(parsed.value("waybill_smtp_refusals_total", ["reason": "too-large"]) == 1)
        #expect(parsed.value("waybill_messages_routed_total", ["outcome": "delivered"]) == 1)
        #expect(parsed.value("waybill_messages_routed_total", ["outcome": "quarantined"]) == 2)
        #expect(parsed.value("waybill_messages_quarantined_total", ["reason": "no-sheet"]) == 1)
        #expect(parsed.value("waybill_messages_quarantined_total", ["reason": "we\"ird\\reason\nx"]) == 1)
        #expect(parsed.value("waybill_pages_decoded_total") == 5)
        #expect(parsed.value("waybill_page_decode_seconds_bucket", ["le": "0.01"]) == 3)
        #expect(parsed.value("waybill_page_decode_seconds_bucket", ["le": "+Inf"]) == 5)
        #expect(parsed.value("waybill_page_decode_seconds_count") == 5)
        #expect(abs((parsed.value("waybill_page_decode_seconds_sum") ?? 0) - 10.317) < 1e-9)
        #expect(parsed.value("waybill_delivery_attempts_total", ["kind": "document", "outcome": "delivered"]) == 1)
        #expect(parsed.value("waybill_delivery_attempts_total", ["kind": "notice", "outcome": "retry"]) == 1)
        #expect(parsed.value("waybill_delivery_attempts_total", ["kind": "notice", "outcome": "dead"]) == 1)
        // Each series once: 13 known quarantine reasons and the odd one, 11 buckets with sum and count.
        #expect(parsed.samples.count == 1 + 2 + 11 + 2 + 14 + 1 + 13 + 9)
    }
}
