import CustosDaemon
import Foundation
import Testing

/// A load may not switch off a guardrail in service unless `guardrails/DISABLED` says why; the
/// first load after a start is held to what the state directory last had in service.
@Suite struct GuardrailSwitchOffTests {
    /// A policies folder with one permit and the example deployment's six guardrail files.
    static func folder() throws -> String {
        let dir = try makeFolder(["a.cedar": permitAll])
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/guardrails", withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: examplePolicies + "/guardrails") {
            try fm.copyItem(atPath: examplePolicies + "/guardrails/" + name, toPath: dir + "/guardrails/" + name)
        }
        return dir
    }

    enum Change: String, CaseIterable, CustomStringConvertible {
        case removeFolder, removeRetention, removeCompute, danglingLink, emptyFolder
        var description: String { rawValue }

        func apply(_ dir: String) throws {
            let fm = FileManager.default
            let g = dir + "/guardrails"
            switch self {
            case .removeFolder: try fm.removeItem(atPath: g)
            case .removeRetention: try fm.removeItem(atPath: g + "/retention.json")
            case .removeCompute: try fm.removeItem(atPath: g + "/compute.json")
            case .danglingLink:
                try fm.removeItem(atPath: g)
                try fm.createSymbolicLink(atPath: g, withDestinationPath: dir + "/guardrails-moved")
            case .emptyFolder:
                for n in try fm.contentsOfDirectory(atPath: g) { try fm.removeItem(atPath: g + "/" + n) }
            }
        }

        /// Guardrail files the change takes away (a dangling link fails the load before that).
        var lost: [String] {
            switch self {
            case .removeRetention: ["guardrails/retention.json"]
            case .removeCompute: ["guardrails/compute.json"]
            case .removeFolder, .emptyFolder, .danglingLink:
                ["guardrails/regions.json", "guardrails/transfers.json", "guardrails/retention.json",
                 "guardrails/purposes.json", "guardrails/compute.json", "guardrails/actions.json"]
            }
        }
    }

    @Test("a reload that would switch a guardrail off is refused and the previous set kept", arguments: Change.allCases)
    func switchingOffIsRefused(change: Change) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        let first = try store.reload().get()
        #expect(first.activeGuardrails.count == 6)
        try change.apply(dir)
        guard case .failure(let e) = store.reload() else { Issue.record("the reload switched guardrails off"); return }
        if change != .danglingLink {
            #expect(e.message.contains("refused: this load would switch off " + change.lost.joined(separator: ", ")), "\(e.message)")
            #expect(e.message.contains("guardrails/DISABLED"))
        } else {
            #expect(e.message.contains("guardrails: is a symbolic link that leads nowhere"), "\(e.message)")
        }
        #expect(store.snapshot?.revision == first.revision)
        #expect(store.lastReloadFailure?.error == e)
    }

    @Test("with guardrails/DISABLED holding a reason the switch-off loads and says what it lost", arguments: [
        Change.removeRetention, .removeCompute, .emptyFolder,
    ])
    func disabledAllowsItOnPurpose(change: Change) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        _ = try store.reload().get()
        try change.apply(dir)
        try "  CAB-1234: retention moves to the records system (J. Doe, 2026-05-02)\n".write(
            toFile: dir + "/guardrails/DISABLED", atomically: true, encoding: .utf8)
        let s = try store.reload().get()
        #expect(s.switchedOff == GuardrailSwitchOff(lost: change.lost, reason: "CAB-1234: retention moves to the records system (J. Doe, 2026-05-02)"))
        #expect(s.disabledReason != nil)
        #expect(s.files.contains("guardrails/DISABLED"))
        // The next reload switches nothing further off.
        #expect(try store.reload().get().switchedOff == nil)
    }

    @Test("guardrails/DISABLED must give a reason", arguments: ["", " \n\t\n", String(repeating: "x", count: 1025)])
    func disabledNeedsAReason(text: String) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/guardrails/DISABLED", atomically: true, encoding: .utf8)
        #expect(throws: PolicyStoreError.self) { try PolicyStore.load(directory: dir) }
    }

    @Test func addingGuardrailsOrKeepingThemNeedsNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let saved = dir + "/compute.saved"
        try FileManager.default.moveItem(atPath: dir + "/guardrails/compute.json", toPath: saved)
        try "compute.saved\n".write(toFile: dir + "/.custosignore", atomically: true, encoding: .utf8)
        let store = PolicyStore(directory: dir)
        #expect(try store.reload().get().activeGuardrails.count == 5)
        try FileManager.default.moveItem(atPath: saved, toPath: dir + "/guardrails/compute.json")
        #expect(try store.reload().get().activeGuardrails.count == 6)
        #expect(try store.reload().get().switchedOff == nil)
    }

    // MARK: the first load after a start

    @Test func theFirstLoadIsHeldToWhatTheStateDirectoryLastHadInService() throws {
        let dir = try Self.folder()
        let state = try makeFolder([:])
        defer { for d in [dir, state] { try? FileManager.default.removeItem(atPath: d) } }
        let baseline = GuardrailBaseline(stateDirectory: state)
        #expect(try baseline.read() == nil)
        _ = try PolicyStore(directory: dir, baseline: baseline).reload().get()
        #expect(try baseline.read()?.count == 6)

        // A restart after retention.json went away: refused, nothing in service.
        try Change.removeRetention.apply(dir)
        let restarted = PolicyStore(directory: dir, baseline: baseline)
        guard case .failure(let e) = restarted.reload() else { Issue.record("a restart switched retention off"); return }
        #expect(e.message.contains("would switch off guardrails/retention.json"))
        #expect(restarted.snapshot == nil)

        // Explicitly: accepted, and the baseline follows.
        try "retention handled by the archive (CAB-77)".write(toFile: dir + "/guardrails/DISABLED", atomically: true, encoding: .utf8)
        let s = try restarted.reload().get()
        #expect(s.switchedOff?.lost == ["guardrails/retention.json"])
        #expect(try baseline.read()?.contains("guardrails/retention.json") == false)
        #expect(try PolicyStore(directory: dir, baseline: baseline).reload().get().switchedOff == nil)
    }

    @Test func aDamagedBaselineFailsTheLoad() throws {
        let dir = try Self.folder()
        let state = try makeFolder([GuardrailBaseline.fileName: "{\"guardrails\": 3}"])
        defer { for d in [dir, state] { try? FileManager.default.removeItem(atPath: d) } }
        let store = PolicyStore(directory: dir, baseline: GuardrailBaseline(stateDirectory: state))
        guard case .failure(let e) = store.reload() else { Issue.record("loaded over a damaged baseline"); return }
        #expect(e.message.hasPrefix(state + "/" + GuardrailBaseline.fileName))
    }
}
