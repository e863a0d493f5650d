import AuditLog
import CustosDaemon
import CustosJSON
import Foundation
import PolicyBundle

/// `custos bundle SUBCOMMAND`: policy change control (docs/change-control.md). A bundle packs a
/// policies folder with a manifest, the author's and the approvers' signatures; `custos serve
/// --bundles` serves the newest approved one.
enum BundleCommand {
    static var group: SubcommandGroup { SubcommandGroup(name: "bundle", subcommands: [
        ("keygen", "Make an Ed25519 key for an author or approver; print its approvers.json entry.", BundleKeygenCommand.spec, BundleKeygenCommand.run),
        ("build", "Pack a policies folder (or an older bundle, for a rollback) into a bundle signed by its author.", BundleBuildCommand.spec, BundleBuildCommand.run),
        ("sign", "Add an approver's signature over the bundle's whole manifest.", BundleSignCommand.spec, BundleSignCommand.run),
        ("verify", "Check a bundle's files, signatures and approvals, and that its files load.", BundleVerifyCommand.spec, BundleVerifyCommand.run),
        ("show", "Print a bundle's manifest and signatures.", BundleShowCommand.spec, BundleShowCommand.run),
    ]) }

    static let groupSpec = group.groupSpec(summary: "Signed policy bundles for change control: build, sign (N of M approvers), verify, show.", details: """
        Run 'custos bundle SUBCOMMAND --help' for its options and exit statuses. The workflow from
        an edit to an approved activation, and the formats: docs/change-control.md.
        """)

    static var spec: CommandSpec { group.spec(group: groupSpec) }

    static func run(_ args: ParsedArguments) throws -> Int32 { try group.run(args, group: groupSpec) }

    /// The one operand after the subcommand's name.
    static func operand(_ args: ParsedArguments, _ spec: CommandSpec) throws -> String {
        let ops = args.positionals.dropFirst()
        guard ops.count == 1, let op = ops.first else { throw UsageError(message: "usage: \(spec.usage)") }
        return op
    }

    static func privateKey(_ path: String) throws -> Ed25519PrivateKey {
        do { return try Ed25519PrivateKey.load(from: path) } catch {
            throw UsageError(message: "\(path): \(error.description) (custos bundle keygen makes one)")
        }
    }

    static func readBundle(_ path: String) throws -> PolicyBundle {
        do { return try PolicyBundle.read(path: path) } catch { throw UsageError(message: "\(path): \(error.description)") }
    }

    static func trust(_ path: String) throws -> Approvers {
        do { return try Approvers.read(path: path) } catch { throw UsageError(message: error.description) }
    }

    static func sequence(_ args: ParsedArguments, _ name: String) throws -> UInt64? {
        guard let v = args.value(name) else { return nil }
        guard let n = UInt64(v), n >= 1, n <= BundleManifest.maxSequence else {
            throw UsageError(message: "--\(name) expects a whole number from 1 to \(BundleManifest.maxSequence), got '\(v)'")
        }
        return n
    }
}

/// `custos bundle keygen`.
enum BundleKeygenCommand {
    static let spec = CommandSpec(
        name: "bundle",
        summary: "Make an Ed25519 signing key for a policy author or approver.",
        usage: "custos bundle keygen --out FILE [--name NAME] [--role ROLE]...",
        options: [
            OptionSpec(name: "out", valueName: "FILE", help: "Where to write the private key (32 bytes, mode 0600; never overwritten)."),
            OptionSpec(name: "name", valueName: "NAME", help: "The holder's name, for the approvers.json entry printed."),
            OptionSpec(name: "role", valueName: "ROLE", help: "A role for the entry printed (repeat for several), e.g. QA."),
        ],
        details: """
        Prints the key's approvers.json entry (give it, not the key file, to whoever keeps
        approvers.json) and its key id. Keep the key file to yourself: whoever holds it signs as you.
        Exit status: 0, or 2 when the file exists or cannot be written.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        guard args.positionals.count == 1 else { throw UsageError(message: "usage: \(spec.usage)") }
        let out = try args.required("out")
        let key: Ed25519PrivateKey
        do {
            key = try Ed25519PrivateKey.generate()
            try key.store(to: out)
        } catch {
            throw UsageError(message: "\(out): \(error.description)")
        }
        let entry = JSON.object(JSONObject([
            .init(key: "name", value: .string(args.value("name") ?? "NAME")),
            .init(key: "roles", value: .array(args.all("role").map { .string($0) })),
            .init(key: "public_key", value: .string(Data(key.publicKey.rawRepresentation).base64EncodedString())),
        ]))
        print(entry.serialized)
        print("key id \(ApproverKey.id(of: key.publicKey))")
        return 0
    }
}

/// `custos bundle build`.
enum BundleBuildCommand {
    static let spec = CommandSpec(
        name: "bundle",
        summary: "Pack a policies folder into a policy bundle signed by its author.",
        usage: "custos bundle build DIR|BUNDLE -o FILE --sequence N --author-key KEY --author NAME --reason TEXT --ticket ID [--rollback-of N] [--created TIME]",
        options: [
            OptionSpec(name: "out", valueName: "FILE", help: "The bundle to write (never overwritten); -o FILE says the same."),
            OptionSpec(name: "sequence", valueName: "N", help: "Its sequence: higher than every bundle served so far (the daemon refuses going back)."),
            OptionSpec(name: "author-key", valueName: "KEY", help: "The author's private key (custos bundle keygen); the author signs, and never counts as an approver."),
            OptionSpec(name: "author", valueName: "NAME", help: "The author's name."),
            OptionSpec(name: "reason", valueName: "TEXT", help: "Why the change is made (one line, at most 1 KiB; it reaches the audit log)."),
            OptionSpec(name: "ticket", valueName: "ID", help: "The change request or ticket it implements."),
            OptionSpec(name: "rollback-of", valueName: "N", help: "This bundle undoes the change of bundle N (its files are an earlier state, given as DIR or BUNDLE)."),
            OptionSpec(name: "created", valueName: "TIME", help: "The creation time to record, YYYY-MM-DDTHH:MM:SSZ (default now)."),
        ],
        details: """
        DIR is read exactly as the daemon reads a policies folder and must load (as `custos check`
        would); the bundle holds every file the revision covers and nothing else. Given a BUNDLE
        instead (with --rollback-of), its files are taken after checking them against its manifest.
        The manifest records every file's SHA-256, the revision, the sequence, the author's key,
        the reason, the ticket and the time (docs/change-control.md, "The bundle").
        Exit status: 0; 1 when the folder does not load; 2 on usage errors.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        // `-o FILE`, as compilers and tar take it, besides `--out FILE`.
        var args = args
        if let i = args.positionals.firstIndex(of: "-o") {
            guard i + 1 < args.positionals.count else { throw UsageError(message: "-o needs a value (FILE)") }
            args.values["out", default: []].append(args.positionals[i + 1])
            args.positionals.removeSubrange(i...(i + 1))
        }
        let input = try BundleCommand.operand(args, spec)
        guard let out = args.value("out") else { throw UsageError(message: "missing the bundle to write: -o FILE") }
        guard let sequence = try BundleCommand.sequence(args, "sequence") else { throw UsageError(message: "missing required option --sequence") }
        let authorKey = try BundleCommand.privateKey(try args.required("author-key"))
        let rollbackOf = try BundleCommand.sequence(args, "rollback-of")
        let created = args.value("created") ?? String(WallTime.now().rfc3339.prefix(19)) + "Z"
        var files: [(name: String, contents: [UInt8])]
        let snapshot: PolicySnapshot
        do throws(PolicyStoreError) {
            if case .bundleFile(let path) = PolicySource.candidate(input) {
                guard rollbackOf != nil else {
                    throw PolicyStoreError("\(path): is a bundle; repacking one is for a rollback (--rollback-of N), otherwise build from the policies folder")
                }
                let old = try PolicyBundles.read(path: path)
                snapshot = try PolicyBundles.load(old, shown: path)
                files = old.files
            } else {
                let contents = try PolicyFolder.read(input)
                snapshot = try PolicyStore.load(contents: contents, shown: input.hasSuffix("/") ? String(input.dropLast()) : input)
                files = PolicyBundles.files(of: contents)
            }
        } catch {
            IO.printError(error.message)
            for d in error.details.dropFirst() { IO.printError(d) }
            return 1
        }
        var bundle: PolicyBundle
        do {
            bundle = try PolicyBundle(files: files, sequence: sequence, revision: snapshot.revision,
                                      author: .init(key: ApproverKey.id(of: authorKey.publicKey), name: try args.required("author")),
                                      changeReason: try args.required("reason"), changeTicket: try args.required("ticket"),
                                      created: created, rollbackOf: rollbackOf)
            try bundle.sign(with: authorKey)
            try PolicyBundle.writeFile(bundle.serialized(), to: out, replace: false)
        } catch let e as BundleError {
            throw UsageError(message: e.description)
        }
        print("built \(out): sequence \(sequence), \(files.count) files, revision \(snapshot.revision), manifest sha256:\(bundle.manifestSHA256)")
        return 0
    }
}

/// `custos bundle sign`.
enum BundleSignCommand {
    static let spec = CommandSpec(
        name: "bundle",
        summary: "Add an approver's Ed25519 signature over a bundle's whole manifest.",
        usage: "custos bundle sign FILE --key KEY",
        options: [OptionSpec(name: "key", valueName: "KEY", help: "The approver's private key (custos bundle keygen).")],
        details: """
        Checks every file against the manifest first (nobody signs a bundle whose files changed),
        then signs the manifest's exact bytes and rewrites FILE in place (atomically), replacing an
        earlier signature by the same key. Review what you sign: 'custos bundle show FILE' and
        'custos diff --from IN-SERVICE --to FILE' (docs/change-control.md).
        Exit status: 0, or 2 when the bundle or the key is unusable.
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let path = try BundleCommand.operand(args, spec)
        let key = try BundleCommand.privateKey(try args.required("key"))
        var bundle = try BundleCommand.readBundle(path)
        do {
            try bundle.sign(with: key)
            try PolicyBundle.writeFile(bundle.serialized(), to: path, replace: true)
        } catch {
            throw UsageError(message: "\(path): \(error.description)")
        }
        print("signed \(path) (sequence \(bundle.manifest.sequence)) with \(ApproverKey.id(of: key.publicKey)); \(bundle.signatures.count) signatures")
        return 0
    }
}
