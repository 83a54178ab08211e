import Foundation
import Testing

/// Every input the fuzzer was seeded with or ever crashed on goes through the fuzz target again,
/// in its replay build, on every `make test`.
@Suite struct FuzzReplayTests {
    static let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz").path

    @Test func seedsAndRegressionsReplayCleanly() throws {
        var inputs: [String] = []
        for folder in ["corpus", "regressions"] {
            let directory = Self.fuzz + "/" + folder
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            inputs += names.filter { !$0.hasPrefix(".") }.sorted().map { directory + "/" + $0 }
        }
        #expect(inputs.count >= 5)
        let binary = URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().appendingPathComponent("WaybillFuzz").path
        let result = try CLI.run(binary, inputs, in: NSTemporaryDirectory())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("replayed \(inputs.count) inputs"))
    }
}
