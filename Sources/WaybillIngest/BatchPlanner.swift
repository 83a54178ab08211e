public import WaybillCore
public import WaybillScan

/// What one scanned page is, for splitting a batch into jobs.
public enum PageKind: Sendable, Hashable {
    /// A routing sheet whose token verified.
    case sheet(DirectiveID)
    /// A routing sheet whose token did not verify: forged, altered, an unknown key, malformed.
    case unverifiedSheet(TokenVerification)
    /// A PATCH T separator: not a document page.
    case separator
    /// A duplex back: not a document page, and no break in the rules.
    case blank
    case document
}

/// The batch rules of the systems Waybill replaces: a scan holds one or more routing sheets,
/// each followed by its documents. Refused, with a named reason: a first page that is not a
/// sheet, a sheet with no documents after it, two sheets in a row, a last page that is a sheet.
/// Blank pages (duplex backs) and separators are not documents: they break none of these rules
/// and are left out of the delivered documents.
public struct BatchRules: Sendable, Hashable {
    /// When false, document pages before the first sheet join the first sheet's job instead of
    /// refusing the batch. Default true, as the systems Waybill replaces do.
    public var firstPageMustBeSheet = true

    public init(firstPageMustBeSheet: Bool = true) {
        self.firstPageMustBeSheet = firstPageMustBeSheet
    }
}

/// A job: one directive and the document pages that follow its sheet.
public struct PlannedJob: Sendable, Hashable {
    public var directive: DirectiveID
    /// Where the sheet itself was.
    public var sheet: PageReference?
    public var pages: [PageReference]
}

/// Why a batch cannot be routed: a stable reason and words for a person.
public struct BatchRefusal: Error, Sendable {
    public var reason: String
    public var detail: String
    /// How far planning got before the refusal (for the journal and `--dry-run`).
    public var plan: Pipeline.Plan?
    /// The directive the refusal is about (revoked, expired, used up): its owner is told too.
    public var directive: Directive?

    public init(reason: String, detail: String) {
        self.reason = reason
        self.detail = detail
    }
}

public enum BatchPlanner {
    /// Splits a scan's pages (in order, across attachments) into jobs.
    public static func plan(_ pages: [(PageReference, PageKind)], rules: BatchRules = BatchRules()) -> Result<[PlannedJob], BatchRefusal> {
        func describe(_ reference: PageReference) -> String {
            "page \(reference.page + 1) of \(reference.file.split(separator: "/").last.map(String.init) ?? reference.file)"
        }
        if let (reference, kind) = pages.first(where: { if case .unverifiedSheet = $0.1 { true } else { false } }),
            case .unverifiedSheet(let verification) = kind
        {
            let why =
                switch verification {
                case .invalidSignature: "its signature does not verify (forged or altered)"
                case .unknownKey: "it was signed with a key this server does not have"
                case .malformed: "its code is not a well-formed Waybill token"
                case .valid: "it verifies"
                }
            return .failure(BatchRefusal(reason: "forged", detail: "the routing sheet on \(describe(reference)) was refused: \(why)"))
        }
        let meaningful = pages.filter {
            switch $0.1 {
            case .blank, .separator: false
            default: true
            }
        }
        guard meaningful.contains(where: { if case .sheet = $0.1 { true } else { false } }) else {
            return .failure(BatchRefusal(reason: "no-sheet", detail: "no routing sheet was found on any of the \(pages.count) pages"))
        }
        var jobs: [PlannedJob] = []
        var leading: [PageReference] = []
        for (index, (reference, kind)) in meaningful.enumerated() {
            switch kind {
            case .sheet(let id):
                if index == 0 || jobs.last.map({ !$0.pages.isEmpty }) ?? true {
                    jobs.append(PlannedJob(directive: id, sheet: reference, pages: []))
                } else {
                    return .failure(
                        BatchRefusal(
                            reason: "malformed-batch",
                            detail: "two routing sheets in a row (\(describe(jobs.last!.sheet!)) and \(describe(reference))): the first has no documents"))
                }
            case .document:
                if jobs.isEmpty {
                    guard !rules.firstPageMustBeSheet else {
                        return .failure(
                            BatchRefusal(
                                reason: "malformed-batch",
                                detail: "the first page (\(describe(reference))) is not a routing sheet: put the sheet on top"))
                    }
                    leading.append(reference)
                } else {
                    jobs[jobs.count - 1].pages.append(reference)
                }
            case .blank, .separator, .unverifiedSheet:
                break
            }
        }
        if let last = jobs.last, last.pages.isEmpty {
            return .failure(
                BatchRefusal(
                    reason: "malformed-batch",
                    detail: "the last page (\(describe(last.sheet!))) is a routing sheet with no documents after it"))
        }
        if !leading.isEmpty { jobs[0].pages.insert(contentsOf: leading, at: 0) }
        return .success(jobs)
    }
}
