import Testing
import WaybillCore
import WaybillIngest
import WaybillScan

/// The batch rules on page kinds alone: the decoder's side is tested on real scans elsewhere.
@Suite struct BatchPlannerTests {
    let a = DirectiveID.random()
    let b = DirectiveID.random()

    func pages(_ kinds: [PageKind]) -> [(PageReference, PageKind)] {
        kinds.enumerated().map { (PageReference(file: "/spool/scan.pdf", page: $0.offset), $0.element) }
    }

    func plan(_ kinds: [PageKind], rules: BatchRules = BatchRules()) -> Result<[PlannedJob], BatchRefusal> {
        BatchPlanner.plan(pages(kinds), rules: rules)
    }

    func reason(_ result: Result<[PlannedJob], BatchRefusal>) -> String? {
        if case .failure(let refusal) = result { refusal.reason } else { nil }
    }

    @Test func sheetsSplitTheBatchAndBlanksAndSeparatorsAreDropped() throws {
        let jobs = try plan([.sheet(a), .blank, .document, .document, .separator, .sheet(b), .blank, .document]).get()
        #expect(jobs.map(\.directive) == [a, b])
        #expect(jobs[0].pages.map(\.page) == [2, 3])
        #expect(jobs[1].pages.map(\.page) == [7])
        #expect(jobs[0].sheet?.page == 0 && jobs[1].sheet?.page == 5)
    }

    @Test func theRulesOfTheSystemWaybillReplaces() {
        #expect(reason(plan([.document, .document])) == "no-sheet")
        #expect(reason(plan([.blank])) == "no-sheet")
        #expect(reason(plan([.document, .sheet(a), .document])) == "malformed-batch")
        #expect(reason(plan([.sheet(a), .sheet(b), .document])) == "malformed-batch")
        #expect(reason(plan([.sheet(a), .blank, .sheet(b), .document])) == "malformed-batch", "a blank back does not separate two sheets")
        #expect(reason(plan([.sheet(a), .document, .sheet(b)])) == "malformed-batch")
        #expect(reason(plan([.sheet(a), .blank, .separator])) == "malformed-batch")
        #expect(reason(plan([.sheet(a), .unverifiedSheet(.invalidSignature(a)), .document])) == "forged")
        #expect(reason(plan([.blank, .sheet(a), .document])) == nil, "a blank first page is not a document")
    }

    @Test func pagesBeforeTheFirstSheetCanJoinItsJob() throws {
        let jobs = try plan([.document, .sheet(a), .document], rules: BatchRules(firstPageMustBeSheet: false)).get()
        #expect(jobs.count == 1)
        #expect(jobs[0].pages.map(\.page) == [0, 2])
    }
}
