#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp for one test's journal.
func tempDirectory() -> String {
    var template = Array("/tmp/custos-guardrails-test-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}
