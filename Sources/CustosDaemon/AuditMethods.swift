import CustosServer

/// The audit methods (audit.query, audit.checkpoint): being wired; see the issue.
public enum AuditMethods {
    public static func register(into table: inout MethodTable, _ services: DaemonServices) {}
}
