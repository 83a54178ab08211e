import Foundation
import Testing
import WaybillCore

@Suite struct DestinationTests {
    let policy = DestinationPolicy(
        folderRoots: ["archive": "/srv/archive", "finance": "/srv/finance"],
        webhookPrefixes: ["https://hooks.example.com/waybill/", "https://erp.example.com"])

    @Test(arguments: [
        "mailto:alice@example.com", "folder:archive", "folder:archive/invoices/2026", "folder:finance/a b/c",
        "https://hooks.example.com/waybill/x", "https://erp.example.com", "https://erp.example.com/in?x=1",
        "HTTPS://ERP.example.com/in",
    ])
    func accepted(_ uri: String) throws {
        let destination = try policy.check(uri)
        #expect(try Destination(uri: destination.uri) == destination)
    }

    @Test(arguments: [
        ("ftp://example.com/x", "invalid-destination"),
        ("alice@example.com", "invalid-destination"),
        ("mailto:alice", "invalid-email"),
        ("mailto:alice@@example.com", "invalid-email"),
        ("mailto:al ice@example.com", "invalid-email"),
        ("mailto:alice@example..com", "invalid-email"),
        ("mailto:a@b.com,c@d.com", "invalid-email"),
        ("folder:nowhere/x", "unknown-folder-root"),
        ("folder:/etc/passwd", "path-escape"),
        ("folder:archive/../etc", "path-escape"),
        ("folder:archive/a/../../etc", "path-escape"),
        ("folder:archive/./x", "path-escape"),
        ("folder:archive//x", "invalid-destination"),
        ("folder:archive/a\\..\\b", "invalid-destination"),
        ("folder:", "invalid-destination"),
        ("https://evil.example.org/x", "webhook-not-allowed"),
        ("https://hooks.example.com/other", "webhook-not-allowed"),
        ("https://erp.example.com.evil.org/x", "webhook-not-allowed"),
        ("https://erp.example.com@evil.org/x", "invalid-destination"),
        ("https://erp.example.comx/x", "webhook-not-allowed"),
        ("http://erp.example.com/x", "webhook-not-allowed"),
        ("https://hooks.example.com/waybill/../admin", "invalid-destination"),
        ("https://hooks.example.com/waybill/..%2fadmin", "invalid-destination"),
        ("https://hooks.example.com/waybill/%2E%2E/admin", "invalid-destination"),
        ("https://erp.example.com/..\\admin", "invalid-destination"),
        ("https://erp.example.com/a b", "invalid-destination"),
    ])
    func refused(_ uri: String, _ code: String) {
        #expect {
            _ = try policy.check(uri)
        } throws: { error in
            (error as? WaybillError)?.code.name == code
        }
    }

    @Test func draftValidationNamesTheProblem() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func code(_ change: (inout DirectiveDraft) -> Void) -> String? {
            var draft = DirectiveDraft(title: "Invoices", owner: "ap@example.com", destinations: ["mailto:x@example.com"])
            change(&draft)
            do {
                _ = try draft.validated(id: .random(), now: now, policy: policy)
                return nil
            } catch { return error.code.name }
        }
        #expect(code { _ in } == nil)
        #expect(code { $0.title = "  " } == "invalid-directive")
        #expect(code { $0.owner = "nobody" } == "invalid-email")
        #expect(code { $0.destinations = [] } == "invalid-destination")
        #expect(code { $0.expiresAt = now.addingTimeInterval(-1) } == "invalid-expiry")
        #expect(code { $0.idleExpiry = 0 } == "invalid-expiry")
        #expect(code { $0.maxUses = 0 } == "invalid-max-uses")
        #expect(code { $0.maxUses = -3 } == "invalid-max-uses")
        #expect(code { $0.title = "two\u{2028}lines" } == "invalid-directive")
        #expect(code { $0.title = String(repeating: "e\u{301}", count: 150) } == "invalid-directive")
        #expect(code { $0.options.notes = "bell\u{7}" } == "invalid-directive")
        #expect(code { $0.options.fileNamePattern = "../{n}" } == "invalid-directive")
        #expect(code { $0.options.fileNamePattern = "a/{n}" } == "invalid-directive")
        #expect(code { $0.options.fileNamePattern = "{date}-{n}" } == nil)
    }

    @Test func statusFollowsRevocationExpiryIdleAndUses() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var directive = Directive(
            id: .random(), title: "T", owner: "o@example.com", destinations: [.email("x@example.com")], createdAt: now,
            expiresAt: now.addingTimeInterval(100), idleExpiry: 50, maxUses: 2)
        #expect(directive.status(at: now) == .active)
        #expect(directive.status(at: now.addingTimeInterval(60)).name == "idle-expired")
        directive.lastUsedAt = now.addingTimeInterval(40)
        #expect(directive.status(at: now.addingTimeInterval(60)) == .active)
        #expect(directive.status(at: now.addingTimeInterval(100)).name == "expired")
        directive.useCount = 2
        #expect(directive.status(at: now).name == "used-up")
        directive.revokedAt = now
        #expect(directive.status(at: now).name == "revoked")
    }

    @Test func durationsAndDates() throws {
        #expect(TimeSpec.parseDuration("90s") == 90)
        #expect(TimeSpec.parseDuration("1d12h") == 129_600)
        #expect(TimeSpec.parseDuration("2w") == 1_209_600)
        #expect(TimeSpec.parseDuration("") == nil)
        #expect(TimeSpec.parseDuration("12") == nil)
        #expect(TimeSpec.parseDuration("d") == nil)
        #expect(TimeSpec.parseDuration("-3d") == nil)
        let now = Date(timeIntervalSince1970: 0)
        let day = try #require(TimeSpec.parseExpiry("2027-03-03", now: now))
        #expect(HumanDate.formatISO(day) == "2027-03-04T00:00:00Z")
        #expect(HumanDate.format(day.addingTimeInterval(-1)) == "3 March 2027")
        #expect(TimeSpec.parseExpiry("2027-03-03T10:00:00Z", now: now) != nil)
        #expect(TimeSpec.parseExpiry("next tuesday", now: now) == nil)
        #expect(TimeSpec.parseExpiry("2027-02-30", now: now) == nil)
        #expect(TimeSpec.parseExpiry("2027-04-31", now: now) == nil)
        #expect(TimeSpec.parseExpiry("2028-02-29", now: now) != nil)
        #expect(TimeSpec.parseDuration(String(repeating: "999999w", count: 20_000)) == nil)
        #expect(TimeSpec.parseDuration("99999999w") == nil)
    }
}
