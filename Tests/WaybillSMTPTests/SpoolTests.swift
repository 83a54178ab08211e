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

@Suite struct SpoolLayoutTests {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-spool-\(UUID().uuidString)")

    /// One file per message: the envelope rides in an extended attribute, so one fsync covers both;
    /// the file's name was made durable when it was reserved.
    @Test func theEnvelopeTravelsWithTheMessage() throws {
        let spool = try Spool(directory: directory)
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@localhost"], declaredSize: 3, authenticatedUser: "scanner")
        let writer = try spool.begin()
        try writer.write(Array("abc".utf8))
        let id = try writer.commit(envelope: envelope)
        let queue = directory.appendingPathComponent("queue").path
        let names = try FileManager.default.contentsOfDirectory(atPath: queue)
        #expect(names.contains(id + ".eml") && !names.contains { $0.hasSuffix(".json") })
        #expect(try spool.envelope(id, as: SMTPEnvelope.self) == envelope)
        #expect(spool.pending() == [id])  // reserved files are not messages
        try spool.remove(id)
        #expect(spool.pending().isEmpty)
        // A restart clears the unused reservations.
        _ = try Spool(directory: directory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).isEmpty)
    }

    /// What a crash mid-commit can leave in `queue/`: a file with data but no envelope, or an
    /// envelope recorded for more data than reached the disk. Neither is a message.
    @Test func halfCommittedFilesAreNotMessages() throws {
        let spool = try Spool(directory: directory)
        let queue = directory.appendingPathComponent("queue")
        let key = FileAttributeKey("NSFileExtendedAttributes")
        let envelope = try JSONEncoder().encode(SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@x"], declaredSize: nil))
        _ = FileManager.default.createFile(atPath: queue.appendingPathComponent("A.eml").path, contents: Data("data only".utf8))
        let short = queue.appendingPathComponent("B.eml").path
        _ = FileManager.default.createFile(atPath: short, contents: Data("part".utf8))
        try FileManager.default.setAttributes(
            [key: ["user.waybill.envelope": envelope, "user.waybill.size": Data("1000".utf8)]], ofItemAtPath: short)
        let whole = queue.appendingPathComponent("C.eml").path
        _ = FileManager.default.createFile(atPath: whole, contents: Data("1234".utf8))
        try FileManager.default.setAttributes(
            [key: ["user.waybill.envelope": envelope, "user.waybill.size": Data("4".utf8), "user.waybill.id": Data("C".utf8)]],
            ofItemAtPath: whole)
        // The same attributes under another name: a recycled file, not a message.
        let renamed = queue.appendingPathComponent("D.eml").path
        _ = FileManager.default.createFile(atPath: renamed, contents: Data("1234".utf8))
        try FileManager.default.setAttributes(
            [key: ["user.waybill.envelope": envelope, "user.waybill.size": Data("4".utf8), "user.waybill.id": Data("C".utf8)]],
            ofItemAtPath: renamed)
        #expect(spool.pending() == ["C"])
        _ = try Spool(directory: directory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue.path) == ["C.eml"])
    }

    /// A removed message's file is truncated, renamed and reused: no new inode per message.
    @Test func removedFilesAreRecycled() throws {
        let spool = try Spool(directory: directory)
        let queue = directory.appendingPathComponent("queue").path
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@x"], declaredSize: nil)
        var inodes = Set<Int>()
        var ids: [String] = []
        for index in 0..<100 {
            let writer = try spool.begin()
            try writer.write(Array("message \(index) \(String(repeating: "x", count: index))".utf8))
            let id = try writer.commit(envelope: envelope)
            ids.append(id)
            let attributes = try FileManager.default.attributesOfItem(atPath: spool.messageURL(id).path)
            inodes.insert((attributes[.systemFileNumber] as? NSNumber)?.intValue ?? -1)
            #expect(spool.pending() == [id])
            #expect(try String(contentsOf: spool.messageURL(id), encoding: .utf8).hasPrefix("message \(index) "))
            try spool.remove(id)
            #expect(spool.pending().isEmpty)
        }
        #expect(Set(ids).count == 100 && ids == ids.sorted())
        // One batch of reservations, then the same files over and over.
        #expect(inodes.count <= 33, "\(inodes.count) inodes for 100 messages")
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).count <= 33)
        #expect(throws: (any Error).self) { try spool.remove(ids[0]) }
    }

    /// Reservations are refilled ahead of need, off the commit's path: once fewer than 16 are
    /// left, a background thread makes the next batch, and ids keep their order across batches.
    @Test func reservationsAreRefilledInTheBackground() async throws {
        let spool = try Spool(directory: directory)
        let queue = directory.appendingPathComponent("queue").path
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@x"], declaredSize: nil)
        var ids: [String] = []
        for index in 0..<20 {
            let writer = try spool.begin()
            try writer.write(Array("message \(index)".utf8))
            ids.append(try writer.commit(envelope: envelope))
        }
        // 32 made by the first commit. Once the 17th left 15, the refill tops them up to 32
        // again: 17 to 20 new files, as it starts while 15 to 12 are left.
        var count = 0
        for _ in 0..<200 {
            count = try FileManager.default.contentsOfDirectory(atPath: queue).count
            if count >= 49 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect((49...52).contains(count), "\(count) files in the queue")
        for index in 20..<45 {
            let writer = try spool.begin()
            try writer.write(Array("message \(index)".utf8))
            ids.append(try writer.commit(envelope: envelope))
        }
        #expect(ids == ids.sorted() && Set(ids).count == 45)
        #expect(spool.pending() == ids)
    }

    /// A server stocks reserved files while idle; messages then take them (no file is created
    /// during the burst), ids stay in order, and a restart removes those never used.
    @Test func aReserveIsMadeAheadAndUsed() throws {
        let spool = try Spool(directory: directory)
        let queue = directory.appendingPathComponent("queue").path
        try spool.stockReserve(100)
        #expect(spool.reserved == 100)
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).count == 100)
        #expect(spool.pending().isEmpty)
        try spool.stockReserve(100)
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).count == 100, "a second call adds nothing")
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@x"], declaredSize: nil)
        var ids: [String] = []
        for index in 0..<80 {
            let writer = try spool.begin()
            try writer.write(Array("message \(index)".utf8))
            ids.append(try writer.commit(envelope: envelope))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).count == 100, "80 reserved files became messages")
        #expect(spool.reserved == 20)
        #expect(spool.pending() == ids && ids == ids.sorted())
        let restarted = try Spool(directory: directory)
        #expect(restarted.pending() == ids)
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue).count == 80)
    }

    /// The envelope's hand-written JSON is what JSONDecoder reads back, odd characters included.
    @Test func envelopeJSONRoundTrips() throws {
        let envelopes = [
            SMTPEnvelope(helo: "h", sender: "", recipients: [], declaredSize: nil),
            SMTPEnvelope(
                helo: "scan\"er\\1\u{1}\t", sender: "\"quoted local\"@example.com", recipients: ["scan@localhost", "zoë@例え.jp"],
                declaredSize: 12_345, authenticatedUser: "canon\nmf", clientAddress: "::ffff:10.0.0.5"),
        ]
        for envelope in envelopes {
            #expect(try JSONDecoder().decode(SMTPEnvelope.self, from: envelope.json) == envelope)
            let object = try #require(try JSONSerialization.jsonObject(with: envelope.json) as? [String: Any])
            let reference = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(envelope)) as? [String: Any])
            #expect(Set(object.keys) == Set(reference.keys))
        }
    }

    /// An envelope too big for the file system's attributes (ext4: one block) goes beside the
    /// message as JSON, and everything else works the same.
    @Test func aLargeEnvelopeFallsBackToAJSONFile() throws {
        let spool = try Spool(directory: directory)
        let recipients = (0..<300).map { "scan+a-rather-long-recipient-address-\($0)@scan.example.com" }
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: recipients, declaredSize: nil)
        let writer = try spool.begin()
        try writer.write(Array("big envelope".utf8))
        let id = try writer.commit(envelope: envelope)
        #expect(spool.pending() == [id])
        #expect(try spool.envelope(id, as: SMTPEnvelope.self) == envelope)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("queue/\(id).json").path))
        try spool.remove(id)
        #expect(spool.pending().isEmpty)
        #expect(try !FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("queue").path).contains { $0.hasPrefix(id) })
    }

    /// Old envelopes (written before `authenticatedUser` existed) still decode.
    @Test func envelopesWithoutTheUserDecode() throws {
        let json = #"{"helo":"h","sender":"s@x","recipients":["scan@localhost"]}"#
        let envelope = try JSONDecoder().decode(SMTPEnvelope.self, from: Data(json.utf8))
        #expect(envelope.authenticatedUser == nil && envelope.declaredSize == nil)
    }

    /// Many sessions committing at once share directory fsyncs and all get their message durable.
    @Test func concurrentCommitsAllLand() async throws {
        let spool = try Spool(directory: directory)
        let envelope = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@localhost"], declaredSize: nil)
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await onOwnThread {
                        Result {
                            let writer = try spool.begin()
                            try writer.write(Array("message \(index)".utf8))
                            return try writer.commit(envelope: envelope)
                        }
                    }.get()
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 40)
        #expect(Set(spool.pending()) == Set(ids))
    }
}
