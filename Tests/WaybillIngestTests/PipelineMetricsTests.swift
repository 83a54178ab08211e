import Foundation
import Testing
import WaybillCore
import WaybillIngest

extension PipelineTests {
    /// What the pipeline counts: messages routed and quarantined by reason, every page the
    /// decoder read with its time, and the folder delivery it made at once. A message already
    /// finished and run again (a restart) is not counted twice.
    @Test func theMetricsCountWhatThePipelineDid() async throws {
        let world = try World()
        let directive = try await world.directive(folder: "metrics")
        let good = try world.mail([try world.scan(["sheet:" + world.sheet(directive), "blank", "doc:PAGE-C1"])])
        let unsheeted = try world.mail([try world.scan(["doc:PAGE-C2", "doc:PAGE-C3"])])
        #expect(try await world.pipeline.process(good).name == "delivered")
        #expect(try await world.pipeline.process(unsheeted).name == "quarantined:no-sheet")
        _ = try await world.pipeline.process(good)

        let counts = world.metrics.snapshot
        #expect(counts.routed == [.delivered: 1, .quarantined: 1])
        #expect(counts.quarantined == ["no-sheet": 1])
        #expect(counts.pagesDecoded == 5)
        #expect(counts.decodeCount == 5)
        #expect(counts.decodeSeconds > 0)
        #expect(counts.deliveryAttempts == [.document: [.delivered: 1]])
    }
}
