import CustosTestSupport
import Foundation

/// Runs the real `custos` binary built by `make test` (`.build/release/custos`).
enum Binary {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let path = repository.appendingPathComponent(".build/release/custos").path

    struct Outcome {
        var status: Int32
        var crashed: Bool  // ended by a signal
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], stdin: Data? = nil) throws -> Outcome {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "\(path) is not built: run `swift build -c release` (make test does) first"])
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, crashed: p.terminationReason == .uncaughtSignal,
                       stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// A fresh scratch folder for one test, removed when the test process exits (`Scratch`).
    static func scratch() throws -> URL { Scratch.url("custos-it") }
}
