import CustosTestSupport

/// A fresh directory for one test's journal, removed when the test process exits.
func tempDirectory() -> String { Scratch.directory("custos-guardrails-test") }
