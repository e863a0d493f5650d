import CustosServer

/// The guardrail methods (place, transfer, consent, holds, retention): being wired; see the issue.
public enum GuardrailMethods {
    public static func register(into table: inout MethodTable, _ services: DaemonServices) {}
}
