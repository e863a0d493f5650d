import AuditLog
import CustosDaemon
import CustosJSON
import Foundation
import PolicyBundle

/// `custos bundle verify`: every check the daemon makes before it serves a bundle.
enum BundleVerifyCommand {
    static let spec = CommandSpec(
        name: "bundle",
        summary: "Check a policy bundle as the daemon does before serving it.",
        usage: "custos bundle verify FILE --trust approvers.json [--in-service N | --state DIR]",
        options: [
            OptionSpec(name: "trust", valueName: "FILE", help: "approvers.json: the keys, roles, threshold and revocations to check against."),
            OptionSpec(name: "in-service", valueName: "N", help: "The sequence in service: a bundle not above it is refused, as the daemon refuses going back."),
            OptionSpec(name: "state", valueName: "DIR", help: "Read the bundle in service (and the guardrails in service) from a daemon's state folder instead."),
        ],
        details: """
        Checks, in order: the archive's layout; the manifest (canonical, no unknown or duplicated
        member); every file against it (none missing, none extra, each SHA-256); that the files
        load as a policies folder and give the manifest's revision; the signatures (each by a
        listed key verifies over the whole manifest); the approval rule (the author signed, and
        at least `threshold` other keys in force, the author's never counted, one per required
        role); and with --in-service or --state, that it is newer than the bundle in service.
        Prints who wrote and approved it. Exit status: 0 verified; 1 refused (the reason on
        stderr); 2 on usage errors.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let path = try BundleCommand.operand(args, spec)
        let trust = try BundleCommand.trust(try args.required("trust"))
        if args.value("in-service") != nil, args.value("state") != nil {
            throw UsageError(message: "--in-service and --state both say what is in service; give one")
        }
        var inServiceSequence = try BundleCommand.sequence(args, "in-service")
        var inServiceManifest: String? = nil
        var guardrails: [String]? = nil
        if let state = args.value("state") {
            do throws(PolicyStoreError) {
                if let r = try BundleRecord(stateDirectory: state).read() {
                    inServiceSequence = r.sequence
                    inServiceManifest = r.manifestSHA256
                }
                guardrails = try GuardrailBaseline(stateDirectory: state).read()
            } catch {
                throw UsageError(message: error.message)
            }
        }
        func refuse(_ why: String) -> Int32 {
            IO.printError("refused \(path): \(why)")
            return 1
        }
        let bundle: PolicyBundle
        do { bundle = try PolicyBundle.read(path: path) } catch { return refuse(error.description) }
        let m = bundle.manifest
        let snapshot: PolicySnapshot
        do { snapshot = try PolicyBundles.load(bundle, shown: path, inService: guardrails) } catch {
            return refuse(error.message + error.details.dropFirst().map { "\n  " + $0 }.joined())
        }
        let approval: Approval
        do { approval = try bundle.verify(trust: trust) } catch { return refuse(error.description) }
        if let n = inServiceSequence {
            if m.sequence < n {
                return refuse("sequence \(m.sequence) is below the bundle in service (\(n)): going back is a downgrade, which the daemon refuses; to return to these policies, build a rollback bundle with a higher sequence (custos bundle build BUNDLE --rollback-of \(n) --sequence \(n + 1) ...)")
            }
            if m.sequence == n, inServiceManifest != bundle.manifestSHA256 {
                return refuse("sequence \(m.sequence) is the bundle in service\(inServiceManifest == nil ? "" : ", with another manifest"); a new change needs a higher sequence")
            }
        }
        var out = "verified \(path): sequence \(m.sequence), revision \(snapshot.revision), manifest sha256:\(bundle.manifestSHA256)\n"
        out += "  change \(m.changeTicket): \(m.changeReason)\n"
        if let r = m.rollbackOf { out += "  rollback of sequence \(r)\n" }
        out += "  author   \(approval.author.label)\n"
        for a in approval.approvers {
            out += "  approved \(a.label)\(a.roles.isEmpty ? "" : " [" + a.roles.joined(separator: ", ") + "]")\n"
        }
        for n in approval.notCounted { out += "  not counted: \(n)\n" }
        out += "  loads: \(snapshot.policyCount) policies, \(snapshot.entityCount) entities, guardrails \(snapshot.guardrails.status)\n"
        print(out, terminator: "")
        return 0
    }
}

/// `custos bundle show`.
enum BundleShowCommand {
    static let spec = CommandSpec(
        name: "bundle",
        summary: "Print a policy bundle's manifest and signatures.",
        usage: "custos bundle show FILE [--trust approvers.json] [--json]",
        options: [
            OptionSpec(name: "trust", valueName: "FILE", help: "Name the signers from approvers.json (signatures are not judged here: use verify)."),
            OptionSpec(name: "json", valueName: nil, help: "Print {manifest, manifest_sha256, signatures} as JSON."),
        ],
        details: """
        Reads the bundle and checks its files against the manifest, then prints what it says:
        sequence, revision, author, reason, ticket, created, files and who signed. Exit status: 0,
        or 1 when the bundle is not a well-formed bundle.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let path = try BundleCommand.operand(args, spec)
        let trust = try args.value("trust").map(BundleCommand.trust)
        let bundle: PolicyBundle
        do { bundle = try PolicyBundle.read(path: path) } catch {
            IO.printError("\(path): \(error.description)")
            return 1
        }
        let m = bundle.manifest
        func signer(_ key: String) -> String {
            guard let k = trust?.key(id: key) else { return key }
            return k.label + (k.revoked.map { " REVOKED (\($0))" } ?? "")
        }
        if args.flag("json") {
            let manifest = (try? JSON.parse(bundle.manifestBytes)) ?? .null
            let sigs = JSON.array(bundle.signatures.map { s in
                var o = JSONObject([.init(key: "key", value: .string(s.key))])
                if let k = trust?.key(id: s.key) {
                    o.append("name", .string(k.name))
                    o.append("roles", .array(k.roles.map { .string($0) }))
                }
                return .object(o)
            })
            print(JSON.object(JSONObject([.init(key: "manifest", value: manifest),
                                          .init(key: "manifest_sha256", value: .string(bundle.manifestSHA256)),
                                          .init(key: "signatures", value: sigs)])).serialized)
            return 0
        }
        var out = "bundle \(path)\n"
        out += "  sequence       \(m.sequence)\(m.rollbackOf.map { " (rollback of \($0))" } ?? "")\n"
        out += "  revision       \(m.revision)\n"
        out += "  manifest       sha256:\(bundle.manifestSHA256)\n"
        out += "  author         \(m.author.name), \(signer(m.author.key))\n"
        out += "  change ticket  \(m.changeTicket)\n"
        out += "  change reason  \(m.changeReason)\n"
        out += "  created        \(m.created)\n"
        out += "  files          \(m.files.count)\n"
        for f in m.files { out += "    \(f.sha256.prefix(16))…  \(f.size)  \(f.name)\n" }
        out += "  signatures     \(bundle.signatures.count)\n"
        for s in bundle.signatures { out += "    \(signer(s.key))\n" }
        print(out, terminator: "")
        return 0
    }
}
