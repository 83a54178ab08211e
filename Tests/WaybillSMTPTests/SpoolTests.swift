import Foundation
import Testing
import WaybillSMTP

@Suite struct SpoolTests {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-spool-\(UUID().uuidString)")
    let envelope = SMTPEnvelope(helo: "scanner", sender: "s@example.com", recipients: ["scan@localhost"], declaredSize: nil)

    @Test func committedMessagesSurviveARestartAndHalfWrittenOnesDoNot() throws {
        let spool = try Spool(directory: directory)
        let writer = try spool.begin()
        try writer.write(Array("Subject: one\r\n\r\nbody\r\n".utf8))
        let id = try writer.commit(envelope: envelope)
        // A second message that never finishes, as if the process died mid-DATA.
        let unfinished = try spool.begin()
        try unfinished.write(Array("Subject: two".utf8))
        #expect(spool.pending() == [id])

        let restarted = try Spool(directory: directory)
        #expect(restarted.pending() == [id])
        #expect(try String(contentsOf: restarted.messageURL(id), encoding: .utf8) == "Subject: one\r\n\r\nbody\r\n")
        #expect(try restarted.envelope(id, as: SMTPEnvelope.self) == envelope)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("incoming").path).isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: restarted.messageURL(id).path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        try restarted.remove(id)
        #expect(restarted.pending().isEmpty)
        _ = unfinished
    }

    @Test func idsAreUniqueAndTimeOrdered() throws {
        let spool = try Spool(directory: directory)
        var ids: [String] = []
        for index in 0..<20 {
            let writer = try spool.begin()
            try writer.write([UInt8(index)])
            ids.append(try writer.commit(envelope: envelope))
            usleep(2_000)
        }
        #expect(Set(ids).count == 20)
        #expect(spool.pending() == ids)
        #expect(Spool.newID(now: Date(timeIntervalSince1970: 1)) < Spool.newID(now: Date(timeIntervalSince1970: 2)))
    }

    @Test func abortedWritesLeaveNothing() throws {
        let spool = try Spool(directory: directory)
        let writer = try spool.begin()
        try writer.write(Array(repeating: 65, count: 10_000))
        #expect(writer.size == 10_000)
        writer.abort()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("incoming").path).isEmpty)
        #expect(spool.pending().isEmpty)
    }
}
