import Testing
import WaybillSMTP

@Suite struct SMTPLineDecoderTests {
    func lines(_ text: String, maximum: Int = 512) -> [SMTPLineDecoder.Event] {
        var decoder = SMTPLineDecoder(maximumLength: maximum)
        return decoder.feed(Array(text.utf8))
    }

    @Test func crlfLinesOnly() {
        #expect(lines("EHLO a\r\nMAIL FROM:<a@b>\r\n") == [.line(Array("EHLO a".utf8)), .line(Array("MAIL FROM:<a@b>".utf8))])
        #expect(lines("EHLO a\nNOOP\r\n") == [.bareLineFeed, .line(Array("NOOP".utf8))])
        #expect(lines("NOOP") == [])
        #expect(lines("\r\n") == [.line([])])
    }

    @Test func theLimitCountsTheCRLF() {
        let fits = String(repeating: "x", count: 510)
        #expect(lines(fits + "\r\n") == [.line(Array(fits.utf8))])
        #expect(lines(fits + "x\r\nNOOP\r\n") == [.tooLong, .line(Array("NOOP".utf8))])
        // A very long line is reported once and does not grow the buffer.
        var decoder = SMTPLineDecoder()
        var events: [SMTPLineDecoder.Event] = []
        for _ in 0..<1000 { events += decoder.feed(Array(repeating: UInt8(ascii: "y"), count: 1000)) }
        #expect(events == [.tooLong])
        #expect(decoder.pending.count <= 1)
        #expect(decoder.feed(Array("\r\nQUIT\r\n".utf8)) == [.line(Array("QUIT".utf8))])
    }

    @Test func splitsAnywhereGiveTheSameLines() {
        let input = Array("EHLO scanner\r\nMAIL FROM:<s@x>\r\nRCPT TO:<scan@localhost>\r\n".utf8)
        var whole = SMTPLineDecoder()
        let expected = whole.feed(input)
        for cut in 0...input.count {
            var decoder = SMTPLineDecoder()
            let events = decoder.feed(input[..<cut]) + decoder.feed(input[cut...])
            #expect(events == expected, "cut at \(cut)")
        }
    }
}

@Suite struct SMTPDataDecoderTests {
    func decode(_ chunks: [[UInt8]]) -> (data: [UInt8], finished: Bool, remainder: [UInt8], decoder: SMTPDataDecoder) {
        var decoder = SMTPDataDecoder()
        var data: [UInt8] = []
        var finished = false
        var remainder: [UInt8] = []
        for chunk in chunks {
            let output = decoder.feed(chunk)
            data += output.data
            finished = finished || output.finished
            remainder += output.remainder
        }
        return (data, finished, remainder, decoder)
    }

    func decode(_ text: String) -> (data: String, finished: Bool, remainder: String, decoder: SMTPDataDecoder) {
        let result = decode([Array(text.utf8)])
        return (String(decoding: result.data, as: UTF8.self), result.finished, String(decoding: result.remainder, as: UTF8.self), result.decoder)
    }

    @Test func endsOnlyOnCRLFDotCRLF() {
        let result = decode("Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        #expect(result.finished)
        #expect(result.data == "Subject: hi\r\n\r\nbody\r\n")
        #expect(result.remainder == "QUIT\r\n")
        // An empty message right after 354.
        #expect(decode(".\r\n").finished)
        #expect(decode(".\r\n").data.isEmpty)
    }

    /// The four smuggling variants never end the message; the bytes stay in it.
    @Test(arguments: ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n"])
    func smugglingEndsAreData(_ fake: String) {
        let message = "Subject: a\r\n\r\nfirst" + fake + "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\n"
        let result = decode(message)
        #expect(!result.finished, "\(fake.debugDescription) ended the message")
        #expect(result.remainder.isEmpty)
        #expect(result.data.contains("MAIL FROM:<evil@x>"))
        #expect(result.decoder.bareLineFeeds + result.decoder.bareCarriageReturns > 0)
        // Only a real end finishes it, and the smuggled text is part of the one message.
        let ended = decode(message + "\r\n.\r\n")
        #expect(ended.finished)
        #expect(ended.data.hasSuffix("DATA\r\n\r\n"))
    }

    @Test func dotStuffingIsUndone() {
        let result = decode("..leading dot\r\n...two\r\nnot.at start\r\n.\r\n")
        #expect(result.finished)
        #expect(result.data == ".leading dot\r\n..two\r\nnot.at start\r\n")
    }

    @Test func everySplitGivesTheSameMessage() {
        let input = Array("a\r\n..b\r\n.c\r\n\r\n.\r\nNOOP\r\n".utf8)
        let whole = decode([input])
        #expect(whole.finished)
        for cut in 0...input.count {
            for second in cut...input.count {
                let parts = decode([Array(input[..<cut]), Array(input[cut..<second]), Array(input[second...])])
                #expect(parts.data == whole.data && parts.finished && parts.remainder == whole.remainder, "cuts \(cut), \(second)")
            }
        }
    }

    @Test func sizesAndLongLinesAreCounted() {
        let long = String(repeating: "z", count: 1500)
        let result = decode("short\r\n" + long + "\r\n.\r\n")
        #expect(result.decoder.size == 7 + 1502)
        #expect(result.decoder.longestLine >= 1500)
    }
}
