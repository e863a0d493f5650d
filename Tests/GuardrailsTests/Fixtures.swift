import Cedar
import CustosJSON
import Guardrails

/// The example configuration shipped in policies/guardrails, read relative to this file.
enum Fixtures {
    static let policiesFolder: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3) // Tests/GuardrailsTests/Fixtures.swift
        return parts.joined(separator: "/") + "/policies"
    }()

    static func exampleFiles() -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in GuardrailConfig.fileNames {
            let path = policiesFolder + "/guardrails/" + name
            guard let f = fopen(path, "rb") else { continue }
            defer { fclose(f) }
            var bytes: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&buf, 1, buf.count, f)
                if n == 0 { break }
                bytes += buf[0..<n]
            }
            out[name] = bytes
        }
        return out
    }

    static let config: GuardrailConfig = {
        do { return try GuardrailConfig.load(policiesFolder: policiesFolder) } catch {
            fatalError("example guardrail configuration does not load: \(error)")
        }
    }()

    static func date(_ s: String) -> CedarDatetime { try! CedarDatetime.parse(s) }

    static let now = date("2026-11-24T12:00:00Z")

    /// EU oncology trial data from the German site.
    static let oncDE = DatasetAttributes(id: "onc301-de-imaging", residency: "DE", state: .pseudonymised,
                                         dataClass: "clinical", study: "ONC-301", cohort: "onc301-de")
}

#if canImport(Glibc)
import Glibc
#endif
