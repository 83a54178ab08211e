import Foundation
import Testing
import WaybillCore
@testable import WaybillDelivery

/// The builder's output read back by an independent parser: Python's `email` package with its
/// modern policy, which decodes RFC 2047 words, RFC 2231 parameters and both transfer encodings.
@Suite(.timeLimit(.minutes(3))) struct OutgoingMailTests {
    struct Parsed: Decodable {
        struct Attachment: Decodable {
            var filename: String?
            var content_type: String
            var sha256: String
            var expected_sha256: String
            var size: Int
        }

        var subject: String
        var from: String
        var to: String
        var message_id: String
        var date: String
        var timestamp: Double
        var content_type: String
        var defects: [String]
        var body: String
        var body_encoding: String
        var attachments: [Attachment]
        var headers: [[String]]
        var longest_line: Int
        var bare_line_ends: Int
        var non_ascii: Bool
    }

    static let parser = """
        import email, email.policy, hashlib, json, sys
        raw = open(sys.argv[1], 'rb').read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        def sha(data): return hashlib.sha256(data).hexdigest()
        expected = [sha(open(path, 'rb').read()) for path in sys.argv[2:]]
        body = msg.get_body(preferencelist=('plain',))
        attachments = []
        for index, part in enumerate(msg.iter_attachments()):
            content = part.get_content()
            attachments.append({'filename': part.get_filename(), 'content_type': part.get_content_type(),
                                'sha256': sha(content), 'expected_sha256': expected[index], 'size': len(content)})
        lines = raw.split(b'\\r\\n')
        print(json.dumps({
            'subject': str(msg['subject']), 'from': str(msg['from']), 'to': str(msg['to']),
            'message_id': str(msg['message-id']), 'date': str(msg['date']),
            'timestamp': msg['date'].datetime.timestamp(), 'content_type': msg.get_content_type(),
            'defects': [repr(d) for part in msg.walk() for d in part.defects],
            'body': body.get_content().replace('\\r\\n', '\\n'), 'body_encoding': body['content-transfer-encoding'],
            'attachments': attachments, 'headers': [[k, str(v)] for k, v in msg.items()],
            'longest_line': max(len(line) for line in lines),
            'bare_line_ends': raw.replace(b'\\r\\n', b'').count(b'\\n') + raw.replace(b'\\r\\n', b'').count(b'\\r'),
            'non_ascii': any(b > 127 for b in raw),
        }))
        """

    func parse(_ file: URL, attachments: [URL] = []) async throws -> Parsed {
        // Output to a file, not a pipe: FileHandle's pipe reads trap on EINTR.
        let json = file.deletingLastPathComponent().appending(path: "parsed.json")
        let status = try await offPool {
            _ = FileManager.default.createFile(atPath: json.path, contents: nil)
            let output = try FileHandle(forWritingTo: json)
            defer { try? output.close() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.parser, file.path] + attachments.map(\.path)
            process.standardOutput = output
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(status == 0)
        return try JSONDecoder().decode(Parsed.self, from: Data(contentsOf: json))
    }

    static let date = Date(timeIntervalSince1970: 1_772_719_629)  // Thu, 05 Mar 2026 14:07:09 +0000

    @Test func nonASCIINamesSubjectAndBodyComeBackExactly() async throws {
        try await withTemporaryDirectory { directory in
            let invoice = directory.appending(path: "a.pdf")
            let notes = directory.appending(path: "b.bin")
            try writeRandomFile(invoice, size: 100_003)
            try writeRandomFile(notes, size: 0)
            let body = "Guten Tag,\n\nanbei die Rechnung für März — 3 Seiten.\n.Zeile mit Punkt\nGrüße\n"
            let mail = OutgoingMail(
                from: "waybill@waybill.test", fromName: "Waybill Büro", to: ["alice@example.test", "bob@example.test"],
                subject: "Rechnung März 2026 – bitte prüfen", body: body,
                attachments: [
                    .init(fileName: "Rechnung März 2026.pdf", contentType: "application/pdf", file: invoice),
                    .init(fileName: "empty \"quoted\" \\ name.bin", contentType: "Application/Octet-Stream", file: notes),
                ],
                messageID: "20260305T140709.K3F9@waybill.test", date: Self.date,
                extraHeaders: [("Auto-Submitted", "auto-generated"), ("X-Waybill-Message", "K3F9")])
            let file = directory.appending(path: "m.eml")
            try mail.write(to: file)
            let parsed = try await parse(file, attachments: [invoice, notes])
            #expect(parsed.defects.isEmpty)
            #expect(parsed.subject == "Rechnung März 2026 – bitte prüfen")
            #expect(parsed.from == "Waybill Büro <waybill@waybill.test>")
            #expect(parsed.to == "alice@example.test, bob@example.test")
            #expect(parsed.message_id == "<20260305T140709.K3F9@waybill.test>")
            #expect(parsed.date == "Thu, 05 Mar 2026 14:07:09 +0000")
            #expect(parsed.timestamp == Self.date.timeIntervalSince1970)
            #expect(parsed.content_type == "multipart/mixed")
            #expect(parsed.body == body)
            #expect(parsed.body_encoding == "quoted-printable")
            #expect(parsed.attachments.map(\.filename) == ["Rechnung März 2026.pdf", "empty \"quoted\" \\ name.bin"])
            #expect(parsed.attachments.map(\.content_type) == ["application/pdf", "application/octet-stream"])
            #expect(parsed.attachments.map(\.size) == [100_003, 0])
            for attachment in parsed.attachments { #expect(attachment.sha256 == attachment.expected_sha256) }
            #expect(parsed.headers.contains(["Auto-Submitted", "auto-generated"]))
            #expect(parsed.headers.contains(["X-Waybill-Message", "K3F9"]))
            #expect(parsed.headers.contains(["MIME-Version", "1.0"]))
            #expect(parsed.longest_line <= 78)
            #expect(parsed.bare_line_ends == 0)
            #expect(!parsed.non_ascii)
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains("filename*=utf-8''Rechnung%20M%C3%A4rz%202026.pdf"))
            #expect(text.contains("filename=\"empty \\\"quoted\\\" \\\\ name.bin\""))
        }
    }

    @Test func longSubjectsAndNamesAreFoldedAndComeBackExactly() async throws {
        try await withTemporaryDirectory { directory in
            let pdf = directory.appending(path: "a.pdf")
            try writeRandomFile(pdf, size: 57 * 3)  // exactly whole base64 lines
            let longName = String(repeating: "Lieferschein Nr. 4711 für Müller & Söhne ", count: 4) + "(Kopie).pdf"
            let longASCIIName = String(repeating: "delivery-note-4711 ", count: 6) + ".pdf"
            let asciiSubject = String(repeating: "A fairly long plain subject line ", count: 5) + "end"
            let unicodeSubject = String(repeating: "Überweisung für Straßenbau 🚚 ", count: 6) + "Ende"
            for subject in [asciiSubject, unicodeSubject] {
                let mail = OutgoingMail(
                    from: "w@waybill.test", to: (1...12).map { "recipient\($0)@example.test" }, subject: subject,
                    body: String(repeating: "x", count: 1_200) + "\nshort line \n",
                    attachments: [
                        .init(fileName: longName, contentType: "application/pdf", file: pdf),
                        .init(fileName: longASCIIName, contentType: "application/pdf", file: pdf),
                    ],
                    messageID: "id@waybill.test", date: Self.date)
                let file = directory.appending(path: "m.eml")
                try mail.write(to: file)
                let parsed = try await parse(file, attachments: [pdf, pdf])
                #expect(parsed.defects.isEmpty)
                #expect(parsed.subject == subject)
                #expect(parsed.to.components(separatedBy: ", ").count == 12)
                #expect(parsed.attachments.map(\.filename) == [longName, longASCIIName])
                #expect(parsed.attachments.allSatisfy { $0.sha256 == $0.expected_sha256 })
                // The 1,200-character line forces quoted-printable, trailing space kept.
                #expect(parsed.body_encoding == "quoted-printable")
                #expect(parsed.body == String(repeating: "x", count: 1_200) + "\nshort line \n")
                #expect(parsed.longest_line <= 78)
            }
        }
    }

    @Test func plainTextAloneIsSevenBitWithoutMultipart() async throws {
        try await withTemporaryDirectory { directory in
            let mail = OutgoingMail(
                from: "w@waybill.test", fromName: "Waybill \"Scanner\"", to: ["a@example.test"],
                subject: "=?not an encoded word?=", body: "Hello\r\n.\r\nBye", messageID: "x@y", date: Self.date)
            let file = directory.appending(path: "m.eml")
            try mail.write(to: file)
            let parsed = try await parse(file)
            #expect(parsed.defects.isEmpty)
            #expect(parsed.content_type == "text/plain")
            #expect(parsed.body_encoding == "7bit")
            #expect(parsed.body == "Hello\n.\nBye\n")
            #expect(parsed.subject == "=?not an encoded word?=")
            #expect(parsed.from == "\"Waybill \\\"Scanner\\\"\" <w@waybill.test>")
            #expect(parsed.attachments.isEmpty)
        }
    }

    @Test func fiveMegabyteAttachmentIsStreamed() async throws {
        try await withTemporaryDirectory { directory in
            let pdf = directory.appending(path: "big.pdf")
            try writeRandomFile(pdf, size: 5 << 20)
            let mail = OutgoingMail(
                from: "w@waybill.test", to: ["a@example.test"], subject: "big", body: "see attached",
                attachments: [.init(fileName: "big.pdf", contentType: "application/pdf", file: pdf)],
                messageID: "big@waybill.test", date: Self.date)
            let file = directory.appending(path: "m.eml")
            try mail.write(to: file)
            let parsed = try await parse(file, attachments: [pdf])
            #expect(parsed.defects.isEmpty)
            #expect(parsed.attachments.first?.size == 5 << 20)
            #expect(parsed.attachments.first.map { $0.sha256 == $0.expected_sha256 } == true)
            #expect(parsed.longest_line == 76)
        }
    }

    @Test(arguments: [
        "subject", "to", "from", "fromName", "messageID", "headerName", "headerValue", "fileName", "contentType",
        "reservedHeader", "bcc",
    ])
    func headerInjectionIsRefused(_ field: String) async throws {
        try await withTemporaryDirectory { directory in
            let pdf = directory.appending(path: "a.pdf")
            try Data("%PDF".utf8).write(to: pdf)
            let evil = "x\r\nBcc: victim@example.test"
            var mail = OutgoingMail(
                from: "w@waybill.test", to: ["a@example.test"], subject: "s", body: "b",
                attachments: [.init(fileName: "a.pdf", contentType: "application/pdf", file: pdf)],
                messageID: "id@waybill.test", date: Self.date)
            switch field {
            case "subject": mail.subject = evil
            case "to": mail.to = ["a@example.test\r\nBcc: victim@example.test"]
            case "from": mail.from = "w@waybill.test\nBcc: victim@example.test"
            case "fromName": mail.fromName = evil
            case "messageID": mail.messageID = "id@waybill.test>\r\nBcc: victim@example.test"
            case "headerName": mail.extraHeaders = [("X-Evil\r\nBcc", "victim@example.test")]
            case "headerValue": mail.extraHeaders = [("X-Note", "ok\nBcc: victim@example.test")]
            case "fileName": mail.attachments[0].fileName = "a.pdf\"\r\nBcc: victim@example.test"
            case "contentType": mail.attachments[0].contentType = "application/pdf\r\nBcc: victim@example.test"
            case "reservedHeader": mail.extraHeaders = [("Subject", "second subject")]
            default: mail.extraHeaders = [("Bcc", "victim@example.test")]
            }
            let file = directory.appending(path: "m.eml")
            #expect(throws: WaybillError.self) { try mail.write(to: file) }
            #expect(!FileManager.default.fileExists(atPath: file.path))
        }
    }

    @Test func missingAttachmentLeavesNoFile() async throws {
        try await withTemporaryDirectory { directory in
            let mail = OutgoingMail(
                from: "w@waybill.test", to: ["a@example.test"], subject: "s", body: "b",
                attachments: [.init(fileName: "a.pdf", contentType: "application/pdf", file: directory.appending(path: "no.pdf"))],
                messageID: "id@waybill.test")
            let file = directory.appending(path: "m.eml")
            #expect(throws: WaybillError.self) { try mail.write(to: file) }
            #expect(!FileManager.default.fileExists(atPath: file.path))
        }
    }

    @Test func pieces() {
        #expect(OutgoingMail.rfc5322Date(Self.date) == "Thu, 05 Mar 2026 14:07:09 +0000")
        #expect(OutgoingMail.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(OutgoingMail.quotedPrintable(Array("a=b ü \t".utf8)) == "a=3Db =C3=BC =09")
        let long = OutgoingMail.quotedPrintable(Array(String(repeating: "é", count: 40).utf8))
        #expect(long.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(OutgoingMail.fold("Subject: short") == "Subject: short")
        let folded = OutgoingMail.fold("Subject: " + String(repeating: "word ", count: 30))
        #expect(folded.replacingOccurrences(of: "\r\n", with: "") == "Subject: " + String(repeating: "word ", count: 30))
        #expect(folded.components(separatedBy: "\r\n").allSatisfy { $0.count <= 78 && !$0.allSatisfy(\.isWhitespace) })
        #expect(OutgoingMail.parameter("filename", "a.pdf") == ["filename=\"a.pdf\""])
        #expect(OutgoingMail.parameter("filename", "ä.pdf") == ["filename*=utf-8''%C3%A4.pdf"])
        #expect(OutgoingMail.makeBoundary().hasPrefix("=_waybill_"))
        #expect(OutgoingMail.makeBoundary() != OutgoingMail.makeBoundary())
    }
}
