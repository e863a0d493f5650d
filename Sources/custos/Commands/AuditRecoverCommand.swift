import AuditLog
import CustosDaemon
import Glibc

/// `custos audit recover`: the one way to start again on a log whose entries no checkpoint
/// covers (checkpoints.log deleted, or more entries after the newest checkpoint than a crash
/// leaves). It never repairs silently: it appends an `audit.recover` entry that names what it
/// accepted and why, and signs a checkpoint over everything, so every later verification shows
/// the break.
enum AuditRecoverCommand {
    static let spec = CommandSpec(
        name: "audit",
        summary: "Accept entries that no checkpoint covers, recording that in the log (needs the signing key; the daemon must be stopped).",
        usage: "custos audit recover --state DIR --reason TEXT",
        options: [
            OptionSpec(name: "state", valueName: "DIR", help: "The daemon's state folder (required); the log is in DIR/audit/."),
            OptionSpec(name: "reason", valueName: "TEXT", help: "Why the entries are accepted, e.g. a change ticket (required; stored in the log)."),
        ],
        details: """
        custos serve refuses to start when entries exist that no signed checkpoint covers beyond
        what a crash leaves: checkpoints.log is missing or holds no checkpoint, or more than one
        batch (1024 entries) follows the newest checkpoint. That is what deleting checkpoints
        looks like, so first try to restore checkpoints.log from a backup or replica, and run
        'custos audit verify --pubkey FILE' to see the state of the log.

        If the entries are to be kept as they are, this command takes the daemon's lock, appends
        one entry (method audit.recover, the operator's user, the reason, and the range of
        entries accepted with the size of the newest checkpoint that existed) and signs a
        checkpoint over the whole log. 'custos audit verify' then passes and prints that entry
        as a 'recovery:' line every time. Nothing is cut or rewritten. Entries are accepted only
        as the files hold them: nothing vouches that they are what the daemon wrote, except
        anchors (checkpoints copied elsewhere earlier), which verify still checks.

        A log shorter than its newest checkpoint, or with damaged records, is not recovered here:
        restore the files from a backup or replica.

        Exit status: 0 recovered, 1 nothing to recover (every entry is covered, or only what
        'custos serve' cuts by itself), 2 usage error, daemon running, no key, or damage that
        this command does not accept.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard AuditOptions.operands(args).isEmpty else { throw UsageError(message: "usage: \(spec.usage)") }
        let state = try args.required("state")
        let reason = try args.required("reason")
        guard reason.contains(where: { !$0.isWhitespace }) else {
            throw UsageError(message: "--reason must say why the entries are accepted (it is stored in the log)")
        }
        let dir = try AuditOptions.existingLogDirectory(args)
        let lockPath = dir + "/" + AuditRecorder.lockFile
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw UsageError(message: "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw UsageError(message: "custos serve is running on \(state) (it holds \(lockPath)): stop it first")
        }
        let caller = AuditCaller(uid: getuid(), gid: getgid(), pid: getpid(), user: userName(getuid()))
        let accepted: AuditUncoveredEntries?
        do {
            let signer = try AuditState.loadSigner(state: state)
            accepted = try AuditWriter.recover(stateDirectory: dir, signer: signer) { report in
                if let last = report.lastEntry { DecisionID.continueAfter(last.decisionID) }
                return AuditRecovery.entry(report.accepted!, reason: reason, caller: caller, decisionID: DecisionID.nextString())
            }
        } catch {
            throw UsageError(message: error.description)
        }
        guard let accepted else {
            IO.printError("nothing to recover: every entry in \(dir) is covered by a signed checkpoint, or only a torn or unacknowledged tail is not, which custos serve cuts itself")
            return 1
        }
        print("recovered: accepted entries \(accepted.from)..<\(accepted.to) (\(accepted.count)) that no checkpoint covered; recorded as entry \(accepted.to) (method \(AuditRecovery.method)) and signed a checkpoint of \(accepted.to + 1) entries")
        return 0
    }

    private static func userName(_ uid: UInt32) -> String {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &pwd, &buf, buf.count, &result) == 0, result != nil, let name = pwd.pw_name else { return "" }
        return String(cString: name)
    }
}
