import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WaybillCore
import WaybillIngest
import WaybillStore
import WaybillWeb

/// The operator pages as a browser uses them, on real quarantined scans run through the real
/// pipeline (OperatorAPITests' world): forms with the session's token, pages as images, and the
/// same refusals as the API.
@Suite struct OperatorPagesTests {
    typealias Browser = PageRoutesTests.Browser

    @Test func anAdminSeesTheHeldScanItsPagesAndReroutesItThroughTheForm() async throws {
        let world = try await OperatorAPITests.World()
        let directive = try await world.directive()
        let id = try await world.held(["PAGE-W1", "PAGE-W2"])
        try await world.app.test(.router) { client in
            let root = Browser(client)
            try await root.signIn("root@example.com")
            let list = try await root.request(.get, "/admin/quarantine")
            #expect(list.status == .ok)
            #expect(list.text.contains("/admin/quarantine/\(id)"))
            #expect(list.text.contains("no-sheet"))
            let entry = try await root.request(.get, "/admin/quarantine/\(id)")
            #expect(entry.status == .ok)
            #expect(entry.text.contains("/admin/quarantine/\(id)/pages/1.png"))
            #expect(entry.text.contains("/admin/quarantine/\(id)/pages/2.png"))
            #expect(!entry.text.contains("/pages/3.png"))
            #expect(entry.text.contains("value=\"\(directive.id.rawValue)\""), "the directive is offered")
            let page = try await root.request(.get, "/admin/quarantine/\(id)/pages/2.png")
            #expect(page.status == .ok)
            #expect(Data(page.body.readableBytesView).starts(with: [0x89, 0x50, 0x4E, 0x47]))
            #expect(try await root.request(.get, "/admin/quarantine/\(id)/pages/3.png").status == .notFound)
            // Without the token nothing moves; with it the pages land in the directive's folder.
            let forged = try await root.request(.post, "/admin/quarantine/\(id)/reroute", form: [("directive", directive.id.rawValue)])
            #expect(forged.status == .forbidden)
            #expect(world.delivered().isEmpty)
            let rerouted = try await root.post(
                "/admin/quarantine/\(id)/reroute", from: "/admin/quarantine/\(id)", [("directive", directive.id.rawValue)])
            #expect(rerouted.status == .seeOther)
            #expect(rerouted.location == "/admin/quarantine/\(id)?notice=rerouted")
            let files = world.delivered()
            #expect(files.count == 1)
            #expect(try OperatorAPITests.labels(try #require(files.first)) == ["PAGE-W1", "PAGE-W2"])
            #expect(try await world.store.quarantineEntry(id)?.state == .rerouted)
            // Its history says who did it, and the journal search finds it by directive.
            let journal = try await root.request(.get, "/admin/journal?directive=\(directive.id.display)")
            #expect(journal.status == .ok)
            #expect(journal.text.contains("web:root@example.com"))
            #expect(journal.text.contains(id))
            // alice owns the directive: the message is in her activity, with its delivery.
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            let activity = try await alice.request(.get, "/activity")
            #expect(activity.text.contains("/activity/\(id)"))
            let message = try await alice.request(.get, "/activity/\(id)")
            #expect(message.status == .ok)
            #expect(message.text.contains("folder:archive/inbox"))
            // bob's activity does not have it, and he may not open it.
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            #expect(!(try await bob.request(.get, "/activity").text.contains(id)))
            #expect(try await bob.request(.get, "/activity/\(id)").status == .forbidden)
        }
    }

    @Test func releaseAndDeleteNeedAnAdminTheTokenAndForDeleteTheBox() async throws {
        let world = try await OperatorAPITests.World()
        let kept = try await world.held(["PAGE-D1"])
        let other = try await world.held(["PAGE-D2"])
        try await world.app.test(.router) { client in
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            for path in ["/admin/quarantine", "/admin/quarantine/\(kept)", "/admin/quarantine/\(kept)/pages/1.png", "/admin/queue",
                "/admin/journal"]
            {
                #expect(try await alice.request(.get, path).status == .forbidden, "\(path)")
            }
            let byAlice = try await alice.post("/admin/quarantine/\(kept)/delete", from: "/directives", [("confirm", "yes")])
            #expect(byAlice.status == .forbidden)
            let root = Browser(client)
            try await root.signIn("root@example.com")
            let unticked = try await root.post("/admin/quarantine/\(kept)/delete", from: "/admin/quarantine/\(kept)", [])
            #expect(unticked.status == .unprocessableContent)
            #expect(try await world.store.quarantineEntry(kept)?.state == .held)
            let deleted = try await root.post("/admin/quarantine/\(kept)/delete", from: "/admin/quarantine/\(kept)", [("confirm", "yes")])
            #expect(deleted.status == .seeOther)
            #expect(try await world.store.quarantineEntry(kept)?.state == .deleted)
            #expect(!FileManager.default.fileExists(atPath: world.pipeline.quarantinedFile(kept).path))
            // Released with no sheet on it, it is refused again and stays held, said on a page.
            let released = try await root.post("/admin/quarantine/\(other)/release", from: "/admin/quarantine/\(other)", [])
            #expect(released.status == .conflict)
            #expect(released.text.contains("Not possible now"))
            #expect(try await world.store.quarantineEntry(other)?.state == .held)
            let queue = try await root.request(.get, "/admin/queue?state=all")
            #expect(queue.status == .ok)
            #expect(try await root.request(.get, "/admin/queue?state=bogus").status == .badRequest)
        }
    }

    @Test func theOwnerSeesTheKeptScanOfADeliveredMessageOthersDoNot() async throws {
        let world = try await OperatorAPITests.World(keepScans: 30 * 86400)
        let alices = try await world.directive()
        let bobs = try await world.directive(owner: "bob@example.com", destination: "folder:archive/bob")
        let (mine, outcome) = try await world.route([try world.scan(["sheet:" + (try world.sheet(alices)), "doc:KEPT-1", "doc:KEPT-2"])])
        #expect(outcome.name == "delivered")
        let kept = world.pipeline.keptScans(mine.id)
        #expect(kept.count == 1, "the scan attachment moved out of the work folder")
        // A batch with alice's and bob's sheets: each sees it in their activity, only an admin its pages.
        let (shared, _) = try await world.route([
            try world.scan(["sheet:" + (try world.sheet(alices)), "doc:SHARED-A", "sheet:" + (try world.sheet(bobs)), "doc:SHARED-B"])
        ])
        try await world.app.test(.router) { client in
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            let page = try await alice.request(.get, "/activity/\(mine.id)")
            #expect(page.status == .ok)
            #expect(page.text.contains("/activity/\(mine.id)/pages/3.png"), "sheet and two pages, as scanned")
            #expect(!page.text.contains("/pages/4.png"))
            let png = try await alice.request(.get, "/activity/\(mine.id)/pages/2.png")
            #expect(png.status == .ok)
            #expect(Data(png.body.readableBytesView).starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            #expect(try await bob.request(.get, "/activity/\(mine.id)/pages/2.png").status == .forbidden)
            let sharedPage = try await alice.request(.get, "/activity/\(shared.id)")
            #expect(sharedPage.status == .ok)
            #expect(sharedPage.text.contains("only an administrator sees its pages"))
            #expect(try await alice.request(.get, "/activity/\(shared.id)/pages/1.png").status == .forbidden)
            let root = Browser(client)
            try await root.signIn("root@example.com")
            #expect(try await root.request(.get, "/activity/\(shared.id)/pages/4.png").status == .ok)
        }
        // Past the retention they are gone, and the page says so.
        world.pipeline.pruneKeptScans(olderThan: Date().addingTimeInterval(60))
        #expect(world.pipeline.keptScans(mine.id).isEmpty)
        try await world.app.test(.router) { client in
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            #expect(try await alice.request(.get, "/activity/\(mine.id)").text.contains("no longer kept"))
        }
    }

    /// A scanner that sends as the person: their refused scan is in their activity with the
    /// reason, and its pages; nobody else's.
    @Test func aRefusedScanShowsInItsSendersActivityWithTheReasonAndPages() async throws {
        let world = try await OperatorAPITests.World(keepScans: 30 * 86400)
        let expired = try await world.directive(maxUses: 1)
        _ = try await world.route([try world.scan(["sheet:" + (try world.sheet(expired)), "doc:FIRST"])])
        let (refused, outcome) = try await world.route(
            [try world.scan(["sheet:" + (try world.sheet(expired)), "doc:SECOND"])], from: "bob@example.com")
        #expect(outcome.name == "quarantined:used-up")
        try await world.app.test(.router) { client in
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            let activity = try await bob.request(.get, "/activity")
            #expect(activity.text.contains("/activity/\(refused.id)"))
            #expect(activity.text.contains("quarantined"))
            let page = try await bob.request(.get, "/activity/\(refused.id)")
            #expect(page.status == .ok)
            #expect(page.text.contains("used its maximum"), "the reason, in words")
            #expect(page.text.contains("/activity/\(refused.id)/pages/2.png"))
            #expect(try await bob.request(.get, "/activity/\(refused.id)/pages/2.png").status == .ok)
            // alice owns the directive but routed nothing from this scan: not hers to see.
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            #expect(!(try await alice.request(.get, "/activity").text.contains(refused.id)))
            #expect(try await alice.request(.get, "/activity/\(refused.id)").status == .forbidden)
        }
    }
}
