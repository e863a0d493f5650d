/// The tables fleet mode keeps in PostgreSQL (docs/fleet.md shows them for a DBA to create
/// by hand when the daemons' role may not create tables).
///
/// `custos_state_changes` is the shared journal: one row per consent or hold change, numbered
/// without gaps in commit order (writers serialise on an advisory lock and take `max(seq) + 1`),
/// so a daemon that has applied every change up to N needs exactly the rows after N. `change` is
/// the change as the embedded journal writes a line of it, so both stores read one format.
/// `custos_witness` holds the signed checkpoints every daemon publishes of its audit log.
public enum FleetSchema {
    /// The channel `NOTIFY` announces new changes on.
    public static let channel = "custos_state"
    /// `pg_advisory_xact_lock` keys: one for writers of the journal, one for creating tables.
    static let writeLock: Int64 = 0x6375_7374_6f73_0001
    static let createLock: Int64 = 0x6375_7374_6f73_0002

    public static let statements = [
        """
        CREATE TABLE IF NOT EXISTS custos_state_changes (
            seq bigint PRIMARY KEY CHECK (seq > 0),
            at_ms bigint NOT NULL,
            op text NOT NULL,
            actor text NOT NULL,
            change text NOT NULL,
            daemon text NOT NULL,
            audit_decision_id text,
            audit_seq bigint,
            committed_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS custos_witness (
            log text NOT NULL,
            size bigint NOT NULL CHECK (size >= 0),
            root text NOT NULL,
            note text NOT NULL,
            daemon text NOT NULL,
            published_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (log, size, root)
        )
        """,
    ]

    /// Creates the tables when they are missing, once across daemons starting together. A role
    /// without CREATE on the schema still works on tables a DBA created.
    static func ensure(_ c: PGConnection, timeoutMs: Int) throws(PGError) {
        let present = try c.query("SELECT to_regclass('custos_state_changes') IS NOT NULL AND to_regclass('custos_witness') IS NOT NULL",
                                  timeoutMs: timeoutMs)
        if present.first?.first == "t" { return }
        try c.query("BEGIN", timeoutMs: timeoutMs)
        do throws(PGError) {
            try c.query("SELECT pg_advisory_xact_lock($1)", [String(createLock)], timeoutMs: timeoutMs)
            for s in statements { try c.query(s, timeoutMs: timeoutMs) }
            try c.query("COMMIT", timeoutMs: timeoutMs)
        } catch {
            if !error.connectionLost { _ = try? c.query("ROLLBACK", timeoutMs: timeoutMs) }
            throw PGError("cannot create the fleet tables (docs/fleet.md has them for a DBA to create): \(error.message)",
                          sqlState: error.sqlState, connectionLost: error.connectionLost)
        }
    }
}
