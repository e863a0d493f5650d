import Foundation

/// Paths of the repository and of ../shared, found from this file so tests run from anywhere.
enum TestPaths {
    static let repository: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repository.appendingPathComponent("Tests/CedarTests/Fixtures")
    /// `../shared` beside the repository; `CUSTOS_SHARED` points elsewhere (a git worktree
    /// kept apart from the main checkout has no `../shared`).
    static let shared = ProcessInfo.processInfo.environment["CUSTOS_SHARED"].map { URL(fileURLWithPath: $0) }
        ?? repository.deletingLastPathComponent().appendingPathComponent("shared")

    static func fixture(_ rel: String) -> String { fixtures.appendingPathComponent(rel).path }

    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    /// ../shared/<rel> when present, with the reason a test skips when it is not.
    static func shared(_ rel: String) -> String? {
        let p = shared.appendingPathComponent(rel).path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
}
