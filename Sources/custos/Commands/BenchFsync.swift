import Foundation

// MARK: - bench fsync

/// `custos bench fsync`: what making the audit log durable costs on one disk, the way
/// PostgreSQL's pg_test_fsync answers it for a WAL. In `always` mode every answer waits for a
/// commit: its batch appended to the segment and fdatasync'ed, then a checkpoint written into a
/// slot of `checkpoint.head` and fdatasync'ed (docs/audit.md). Each pattern is timed on its own
/// and as the commit, plus a write into an already-written file (what a preallocated segment
/// would cost), in rounds whose order rotates, so a noisy moment of a shared disk does not land
/// on one pattern only.
extension BenchCommand {
    enum SyncPattern: String, CaseIterable {
        /// `write` at the end of a growing file + fdatasync: a segment's batch.
        case append
        /// `pwrite` of a note into one of two 4 KiB slots, in turn + fdatasync: `checkpoint.head`.
        case head
        /// `append`, then `head`: one `always` commit as the writer does it today.
        case commit
        /// `pwrite` into a file whose blocks were written and synced beforehand + fdatasync: the
        /// file's size and block map do not change, so only the data goes out.
        case preallocated
    }

    static func runFsync(_ args: ParsedArguments) throws -> Int32 {
        let parent = args.value("dir") ?? "."
        let rounds = try args.int("rounds", default: 5)
        let syncs = try args.int("syncs", default: 300)
        let bytes = try args.int("bytes", default: 8192)
        guard rounds > 0, syncs > 0, bytes > 0, bytes <= 1 << 20 else {
            throw UsageError(message: "--rounds and --syncs must be positive, --bytes between 1 and 1048576")
        }
        // Each pattern's files hold syncs x bytes; a typo must not fill the state disk.
        guard syncs.multipliedReportingOverflow(by: bytes).partialValue <= 1 << 30, syncs <= 1 << 20 else {
            throw UsageError(message: "--syncs x --bytes must stay within 1 GiB of scratch files (got \(syncs) x \(bytes))")
        }
        var template = Array((parent + "/custos-fsync.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw UsageError(message: "cannot create a scratch folder in \(parent): \(String(cString: strerror(errno))) (--dir: a folder on the disk the audit log lives on)")
        }
        let dir = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        print("fsync: \(dir) (removed afterwards), \(rounds) rounds of \(syncs) syncs per pattern, batches of \(bytes) bytes, head notes of 512 bytes")

        let patterns = SyncPattern.allCases
        var p50s: [SyncPattern: [Double]] = [:], p99s: [SyncPattern: [Double]] = [:]
        for r in 0..<rounds {
            var line: [String] = []
            for k in 0..<patterns.count {
                let pattern = patterns[(k + r) % patterns.count]
                var samples = try timeSyncs(pattern, in: dir, syncs: syncs, bytes: bytes)
                samples.sort()
                let p50 = Double(samples[samples.count / 2]) / 1000
                let p99 = Double(samples[min(samples.count - 1, samples.count * 99 / 100)]) / 1000
                p50s[pattern, default: []].append(p50)
                p99s[pattern, default: []].append(p99)
                line.append("\(pattern.rawValue) p50 \(fsyncMicros(p50)) p99 \(fsyncMicros(p99))")
            }
            print("round \(r + 1): " + line.joined(separator: ", "))
        }
        for pattern in patterns {
            let a = p50s[pattern]!, b = p99s[pattern]!
            print("median \(pattern.rawValue): p50 \(fsyncMicros(median(a))) (\(fsyncMicros(a.min()!))-\(fsyncMicros(a.max()!))), p99 \(fsyncMicros(median(b)))")
        }
        return 0
    }

    private static func fsyncMicros(_ v: Double) -> String { String(format: "%.0f us", v) }

    /// Times `syncs` repetitions of `pattern` on fresh files in `dir`; nanoseconds each.
    private static func timeSyncs(_ pattern: SyncPattern, in dir: String, syncs: Int, bytes: Int) throws -> [UInt64] {
        let chunk = [UInt8](repeating: 0x61, count: bytes)
        let note = [UInt8](repeating: 0x62, count: 512)
        // Without O_APPEND (where Linux pwrite appends): `write` at the file position appends all
        // the same, as nothing else writes the file.
        let segment = try openFile(dir + "/segment", flags: O_WRONLY | O_CREAT | O_TRUNC)
        let head = try openFile(dir + "/head", flags: O_WRONLY | O_CREAT | O_TRUNC)
        defer { close(segment); close(head) }
        try put(head, [UInt8](repeating: 0, count: 8192), at: 0)
        try syncFile(head)
        if pattern == .preallocated {
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            for _ in 0..<((syncs * bytes + zeros.count - 1) / zeros.count) {
                guard write(segment, zeros, zeros.count) == zeros.count else { throw fsyncFailure("write", dir) }
            }
            try syncFile(segment)
            try syncDirectory(dir)
        }
        var samples = [UInt64](repeating: 0, count: syncs)
        for i in 0..<syncs {
            let t0 = monotonicNanos()
            switch pattern {
            case .append:
                guard write(segment, chunk, chunk.count) == chunk.count else { throw fsyncFailure("write", dir) }
                try syncFile(segment)
            case .head:
                try put(head, note, at: off_t(i % 2 * 4096))
                try syncFile(head)
            case .commit:
                guard write(segment, chunk, chunk.count) == chunk.count else { throw fsyncFailure("write", dir) }
                try syncFile(segment)
                try put(head, note, at: off_t(i % 2 * 4096))
                try syncFile(head)
            case .preallocated:
                try put(segment, chunk, at: off_t(i * bytes))
                try syncFile(segment)
            }
            samples[i] = monotonicNanos() - t0
        }
        return samples
    }

    private static func openFile(_ path: String, flags: Int32) throws -> Int32 {
        let fd = open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fsyncFailure("open", path) }
        return fd
    }

    private static func put(_ fd: Int32, _ bytes: [UInt8], at offset: off_t) throws {
        guard pwrite(fd, bytes, bytes.count, offset) == bytes.count else { throw fsyncFailure("pwrite", "fd \(fd)") }
    }

    private static func syncFile(_ fd: Int32) throws {
        // An fsync error is reported, never retried: the kernel may have dropped the pages.
        guard fdatasync(fd) == 0 else { throw fsyncFailure("fdatasync", "fd \(fd)") }
    }

    private static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fsyncFailure("open", dir) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fsyncFailure("fsync", dir) }
    }

    private static func fsyncFailure(_ call: String, _ what: String) -> UsageError {
        UsageError(message: "\(call) \(what): \(String(cString: strerror(errno)))")
    }
}
