import Guardrails
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Test func everyDenialCodeAndObligationIsDocumented() throws {
    let path = Fixtures.policiesFolder.replacingOccurrences("/policies", with: "/docs/guardrails.md")
    guard let f = fopen(path, "rb") else {
        Issue.record("docs/guardrails.md not found at \(path)")
        return
    }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 8192)
    while true { let n = fread(&buf, 1, buf.count, f); if n == 0 { break }; bytes += buf[0..<n] }
    let text = String(decoding: bytes, as: UTF8.self)
    for code in DenialCode.allCases {
        #expect(text.contains("| `\(code.rawValue)` |"), "\(code.rawValue) is missing from the code table")
    }
    for name in GuardrailConfig.fileNames {
        #expect(text.contains("\n    \(name) "), "guardrails/\(name) is missing from the folder listing")
    }
    for kind in ActionKind.allCases {
        #expect(text.contains("| \(kind.rawValue) |"), "action kind \(kind.rawValue) is missing from the actions.json table")
    }
    for kind in ["transfer_basis", "legal_basis", "dispose"] {
        #expect(text.contains("| `\(kind)` |"), "obligation \(kind) is missing")
    }
}
