import CustosJSON

/// The entry `custos audit recover` appends when it accepts entries that no checkpoint covered,
/// so the acceptance is in the log itself, covered by the checkpoint signed right after it, and
/// `custos audit verify` can show it.
public enum AuditRecovery {
    public static let method = "audit.recover"

    /// `reason` is the operator's; `caller` who ran the command.
    public static func entry(_ accepted: AuditUncoveredEntries, reason: String, caller: AuditCaller,
                             decisionID: String) -> AuditEntry {
        var accepting = "accepted entries \(accepted.from)..<\(accepted.to) (\(accepted.count)) that no checkpoint covered; "
        accepting += accepted.newestCheckpoint.map { "the newest checkpoint covered \($0) entries" } ?? "there was no checkpoint"
        if accepted.checkpointsLogMissing { accepting += "; checkpoints.log was missing or held no checkpoint" }
        var context = JSONObject()
        context.append("accepted_from", .int(Int64(clamping: accepted.from)))
        context.append("accepted_to", .int(Int64(clamping: accepted.to)))
        context.append("newest_checkpoint", accepted.newestCheckpoint.map { .int(Int64(clamping: $0)) } ?? .null)
        context.append("checkpoints_log_missing", .bool(accepted.checkpointsLogMissing))
        return AuditEntry(decisionID: decisionID, caller: caller, method: method,
                          principal: caller.user.isEmpty ? "uid \(caller.uid)" : "user \(caller.user)",
                          action: "recover", resource: "audit log", decision: .allow,
                          reasons: ["reason: " + reason, accepting], policyRevision: "",
                          requestSHA256: SHA256Digest.hash("\(method)\n\(accepted.from)\n\(accepted.to)\n\(reason)").hex,
                          context: context)
    }
}
