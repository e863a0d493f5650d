import Cedar
import CustosDaemon
import CustosTestSupport
import Foundation
import Testing

/// A fresh folder under /tmp with the given files; removed by the caller.
func makeFolder(_ files: [String: String]) throws -> String {
    let dir = Scratch.directory("custos-store")
    for (name, text) in files {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
    return dir
}

let permitAll = "@id(\"everyone\") permit(principal, action, resource);\n"
let forbidBob = "forbid(principal == User::\"bob\", action, resource);\n"
let oneUser = #"[{"uid":{"type":"User","id":"alice"},"attrs":{},"parents":[]}]"#

@Suite struct PolicyStoreTests {
    @Test func loadsEveryCedarFileAndEntitiesJSONAndNamesPoliciesByIDAnnotation() throws {
        let dir = try makeFolder(["a.cedar": permitAll, "b.cedar": forbidBob, "entities.json": oneUser])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try PolicyStore.load(directory: dir)
        #expect(s.policyCount == 2)
        #expect(s.entityCount == 1)
        #expect(s.policyNames == ["everyone", "policy1"])
        #expect(s.files == ["a.cedar", "b.cedar", "entities.json"])
    }

    @Test func filesListedInCustosignoreAreNotReadAndDoNotCountInTheRevision() throws {
        let base = ["a.cedar": permitAll]
        let d1 = try makeFolder(base.merging([".custosignore": "README.md\n"]) { a, _ in a })
        let d2 = try makeFolder(base.merging([".custosignore": "README.md\n", "README.md": "# notes"]) { a, _ in a })
        let d3 = try makeFolder(base.merging([".custosignore": "README.md\n", "requests/x.json": "{}"]) { a, _ in a })
        defer { for d in [d1, d2, d3] { try? FileManager.default.removeItem(atPath: d) } }
        let s1 = try PolicyStore.load(directory: d1), s2 = try PolicyStore.load(directory: d2), s3 = try PolicyStore.load(directory: d3)
        #expect(s2.policyCount == 1)
        #expect(s2.files == [".custosignore", "a.cedar"])
        #expect(s1.revision == s2.revision)
        #expect(s1.revision == s3.revision)
    }

    @Test func revisionIsSHA256OverNameNulLengthAndContentsInNameOrder() {
        let files = [PolicyStore.File(name: "b", contents: Array("2".utf8)), PolicyStore.File(name: "a", contents: Array("1".utf8))]
        // Computed independently: printf 'a\0\0\0\0\0\0\0\0\x011b\0\0\0\0\0\0\0\0\x012' | sha256sum
        #expect(PolicyStore.revision(of: files) == "sha256:99f0903f2013a8cc5618d869b12aed79a401068854a3914470fa7ceefe3c6204")
        #expect(PolicyStore.revision(of: files) == PolicyStore.revision(of: files.reversed()))
        // Moving a byte across the boundary between two files changes the revision.
        let moved = [PolicyStore.File(name: "a", contents: Array("1b".utf8)), PolicyStore.File(name: "b", contents: [])]
        let kept = [PolicyStore.File(name: "a", contents: Array("1".utf8)), PolicyStore.File(name: "b", contents: Array("b".utf8))]
        #expect(PolicyStore.revision(of: moved) != PolicyStore.revision(of: kept))
    }

    @Test func aFailedReloadKeepsThePreviousSnapshotAndRecordsTheError() throws {
        let dir = try makeFolder(["a.cedar": permitAll])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = PolicyStore(directory: dir)
        #expect(store.snapshot == nil)
        guard case .success(let first) = store.reload() else { Issue.record("first load failed"); return }
        try "permit(principal, action, resource".write(toFile: dir + "/broken.cedar", atomically: true, encoding: .utf8)
        guard case .failure(let e) = store.reload() else { Issue.record("broken folder loaded"); return }
        #expect(e.message.contains("broken.cedar"))
        #expect(store.snapshot?.revision == first.revision)
        #expect(store.lastReloadFailure?.error == e)
        try FileManager.default.removeItem(atPath: dir + "/broken.cedar")
        guard case .success = store.reload() else { Issue.record("repaired folder failed"); return }
        #expect(store.lastReloadFailure == nil)
    }

    @Test(arguments: [
        (["entities.json": "[{\"uid\":{\"type\":\"User\",\"id\":\"a\"}}]"], "entities.json"),
        (["entities.json": "[1,"], "entities.json:1"),
        (["p.cedar": "permit(principal, action, resource) when { 1 + };"], "p.cedar:1"),
    ])
    func loadErrorsNameTheFile(files: [String: String], expected: String) throws {
        let dir = try makeFolder(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: PolicyStoreError.self) { try PolicyStore.load(directory: dir) }
        do { _ = try PolicyStore.load(directory: dir) } catch { #expect(error.message.contains(expected), "\(error.message)") }
    }

    @Test func aMissingFolderIsAnErrorThatSaysSo() {
        do {
            _ = try PolicyStore.load(directory: "/nonexistent/custos-policies")
            Issue.record("loaded a missing folder")
        } catch {
            #expect(error.message.contains("no such folder"))
        }
    }
}
