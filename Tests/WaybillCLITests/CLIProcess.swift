import Foundation
import Testing

/// Runs the real `waybill` binary built beside the test bundle, in its own working directory.
struct CLI {
    let directory: String
    var environment: [String: String] = [:]

    init() throws {
        directory = NSTemporaryDirectory() + "waybill-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["WAYBILL_BIN"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("waybill").path
    }()

    static let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Templates").path

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    @discardableResult
    func run(_ arguments: [String]) throws -> Result {
        try Self.run(Self.binary, arguments, in: directory, environment: environment)
    }

    /// Runs and expects success, returning standard output.
    func ok(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try run(arguments)
        #expect(result.status == 0, "waybill \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout
    }

    func json(_ arguments: [String]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try ok(arguments).utf8))
    }

    static func run(_ executable: String, _ arguments: [String], in directory: String, environment: [String: String] = [:])
        throws -> Result
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WAYBILL_") }
        env["WAYBILL_TEMPLATES"] = templates
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // No child may hang the suite (a client pointed at the wrong port waits forever): ten
        // minutes is far beyond any command here, and the test then fails on the signal.
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 600) { if process.isRunning { kill(pid, SIGKILL) } }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: directory + "/" + path) }
}
