import Glibc
import Guardrails

/// What a policies folder may hold, and how it is read (docs/operations.md, "The policies
/// folder").
///
/// Every entry must be recognised, or listed in `.custosignore`: a forbid saved as
/// `90-forbid.cedar.bak`, `90-forbid.Cedar` or `90-forbid.cedar ` is otherwise silently not
/// read, and the folder protects less than its author believes. Hidden names get no exception
/// (editor swap files and `.git` go in `.custosignore`), since `.90-forbid.cedar` is just as
/// unread.
///
/// Links may point anywhere inside the folder. One that leads outside it is refused before
/// anything behind it is opened: the daemon can read files its authors cannot (the audit
/// signing key, /etc/shadow through a privileged account), and a parse error would copy their
/// first bytes into `policy.status`, stderr and the audit log.
public enum PolicyFolder {
    /// One kind of entry a policies folder may hold.
    public struct Entry: Sendable {
        /// An exact name, or `*` followed by a suffix (`*.cedar`).
        public var pattern: String
        public var isDirectory: Bool
        /// What it is for, in the daemon's own words (errors list these).
        public var role: String
    }

    /// The one list of what may sit at the top of a policies folder. Anything else fails the
    /// load unless `.custosignore` lists it. Add new kinds of files here (and to
    /// docs/operations.md), nowhere else.
    public static let entries: [Entry] = [
        Entry(pattern: "*.cedar", isDirectory: false, role: "Cedar policies"),
        Entry(pattern: "entities.json", isDirectory: false, role: "Cedar entities"),
        Entry(pattern: schemaFileName, isDirectory: false, role: "the Cedar schema"),
        Entry(pattern: schemaJSONFileName, isDirectory: false, role: "the Cedar schema (JSON format)"),
        Entry(pattern: linksFileName, isDirectory: false, role: "template links"),
        Entry(pattern: FolderSettings.fileName, isDirectory: false, role: "folder settings"),
        Entry(pattern: GuardrailConfig.folderName, isDirectory: true, role: "guardrail configuration"),
        Entry(pattern: "requests", isDirectory: true, role: "example requests (not read by the daemon)"),
        Entry(pattern: ignoreFileName, isDirectory: false, role: "names meant to be here but not read"),
    ]

    /// The folder's schema, in Cedar's syntax or its JSON format (at most one of the two).
    /// Bytes one file of the folder may hold, as one file of a bundle may (64 MiB): a larger
    /// one (a sparse `truncate -s 1T entities.json`) is a failed load, never an allocation
    /// that aborts the daemon.
    public static let maxFileBytes = 64 << 20

    public static let schemaFileName = "schema.cedarschema"
    public static let schemaJSONFileName = "schema.cedarschema.json"
    public static func isSchemaFile(_ name: String) -> Bool {
        name.utf8.elementsEqual(schemaFileName.utf8) || name.utf8.elementsEqual(schemaJSONFileName.utf8)
    }
    /// The links of the folder's templates, in the Cedar CLI's format.
    public static let linksFileName = "links.json"
    /// Names (or simple globs) of entries that are meant to be in the folder but not read.
    public static let ignoreFileName = ".custosignore"
    /// In `guardrails/`: its presence (non-empty, holding the reason) allows a load that
    /// switches a guardrail off; see `PolicyStore`.
    public static let disabledFileName = "DISABLED"
    /// What `guardrails/` may hold.
    public static var guardrailEntries: [String] { GuardrailConfig.fileNames + [disabledFileName] }

    /// What one read of a folder found: every file the daemon reads, with its bytes.
    public struct Contents: Sendable {
        /// Recognised regular files at the top (`*.cedar`, `entities.json`, the schema,
        /// `links.json`, `custos.json`, `.custosignore`), in byte order of their names.
        public var topLevel: [PolicyStore.File] = []
        /// The files of `guardrails/`, named without the folder, in byte order.
        public var guardrails: [PolicyStore.File] = []
    }

    /// Reads `directory` as the daemon loads it. Errors name the entry (as `directory/name`)
    /// and never quote what a file holds.
    public static func read(_ directory: String) throws(PolicyStoreError) -> Contents {
        let root = try resolveRoot(directory)
        let shown = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let names = try list(root, shown: shown)
        var ignore = IgnoreList()
        var ignoreBytes: [UInt8]? = nil
        if names.contains(where: { $0.utf8.elementsEqual(ignoreFileName.utf8) }) {
            // Resolved first like every entry: the list decides what else is read.
            _ = try resolve(ignoreFileName, in: root, root: root, shown: shown + "/" + ignoreFileName)
            let bytes = try readFile(name: ignoreFileName, in: root, root: root, shown: shown)
            ignore = try IgnoreList.parse(bytes, path: shown + "/" + ignoreFileName)
            ignoreBytes = bytes
        }
        var out = Contents()
        for name in names {
            let entry = recognised(name)
            if entry == nil, ignore.matches(name) { continue }
            let path = shown + "/" + name
            // Resolved before anything else, so a link leading outside is reported as such.
            let kind = try resolve(name, in: root, root: root, shown: path)
            guard let entry else { throw unrecognised(name, path: path) }
            switch (entry.isDirectory, kind) {
            case (false, .file):
                let bytes = try name.utf8.elementsEqual(ignoreFileName.utf8) ? ignoreBytes! : readFile(name: name, in: root, root: root, shown: shown)
                out.topLevel.append(PolicyStore.File(name: name, contents: bytes))
            case (true, .directory):
                if name.utf8.elementsEqual(GuardrailConfig.folderName.utf8) {
                    out.guardrails = try readGuardrails(root: root, shown: shown, ignore: ignore)
                }
            case (false, _):
                throw PolicyStoreError("\(path): is not a regular file; the policies folder reads it as \(entry.role)")
            case (true, _):
                throw PolicyStoreError("\(path): is not a folder; the policies folder reads \(name)/ as \(entry.role)")
            }
        }
        return out
    }

    /// The files of a policy bundle as one read of a folder would give them, held to the same
    /// list of recognised entries: a top-level name must be a file kind `entries` names, a
    /// `guardrails/NAME` one of `guardrailEntries`. Anything else fails, naming it as a folder
    /// read would (`shown/name`). A bundle holds only what the daemon reads, so `.custosignore`
    /// hides nothing here and `requests/` is refused too: it would not be read.
    public static func contents(bundleFiles files: [PolicyStore.File], shown: String) throws(PolicyStoreError) -> Contents {
        var out = Contents()
        let prefix = Array((GuardrailConfig.folderName + "/").utf8)
        for f in files.sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) {
            let path = shown + "/" + f.name
            if f.name.utf8.starts(with: prefix) {
                let name = String(decoding: f.name.utf8.dropFirst(prefix.count), as: UTF8.self)
                guard !name.utf8.contains(UInt8(ascii: "/")), guardrailEntries.contains(where: { $0.utf8.elementsEqual(name.utf8) }) else {
                    throw PolicyStoreError("\(path): unknown guardrail file; expected one of \(guardrailEntries.joined(separator: ", "))")
                }
                out.guardrails.append(PolicyStore.File(name: name, contents: f.contents))
                continue
            }
            guard !f.name.utf8.contains(UInt8(ascii: "/")) else {
                throw PolicyStoreError("\(path): not a file the daemon reads (a bundle holds top-level files and \(GuardrailConfig.folderName)/ files only)")
            }
            guard let entry = recognised(f.name) else { throw unrecognised(f.name, path: path) }
            guard !entry.isDirectory else {
                throw PolicyStoreError("\(path): is a file; the policies folder reads \(f.name)/ as \(entry.role)")
            }
            out.topLevel.append(f)
        }
        return out
    }

    /// The entry kind `name` is, when it is one; nil for anything unrecognised. A hidden name
    /// never matches a pattern (`.#10-a.cedar` is an editor's lock file, not a policy).
    static func recognised(_ name: String) -> Entry? {
        for e in entries {
            if e.pattern.hasPrefix("*") {
                if name.utf8.first == UInt8(ascii: ".") { continue }
                let suffix = e.pattern.utf8.dropFirst()
                if name.utf8.count > suffix.count, name.utf8.reversed().starts(with: suffix.reversed()) { return e }
            } else if name.utf8.elementsEqual(e.pattern.utf8) {
                return e
            }
        }
        return nil
    }

    private static func readGuardrails(root: String, shown: String, ignore: IgnoreList) throws(PolicyStoreError) -> [PolicyStore.File] {
        let dir = root + "/" + GuardrailConfig.folderName
        let dirShown = shown + "/" + GuardrailConfig.folderName
        var files: [PolicyStore.File] = []
        for name in try list(dir, shown: dirShown) {
            let known = guardrailEntries.contains { $0.utf8.elementsEqual(name.utf8) }
            if !known, ignore.matches(GuardrailConfig.folderName + "/" + name) { continue }
            let path = dirShown + "/" + name
            let kind = try resolve(name, in: dir, root: root, shown: path)
            guard known else {
                throw PolicyStoreError("\(path): unknown guardrail file; expected one of \(guardrailEntries.joined(separator: ", ")) (list it in \(ignoreFileName) as \(GuardrailConfig.folderName)/\(name) if it is meant to be there)")
            }
            guard kind == .file else { throw PolicyStoreError("\(path): is not a regular file") }
            files.append(PolicyStore.File(name: name, contents: try readFile(name: name, in: dir, root: root, shown: dirShown)))
        }
        return files
    }

    // MARK: errors

    private static func unrecognised(_ name: String, path: String) -> PolicyStoreError {
        var hint = ""
        let lower = name.lowercased()
        if lower.contains("schema") {
            hint = "; did you mean \(schemaFileName) or \(schemaJSONFileName)?"
        } else if lower.contains("link") {
            hint = "; did you mean \(linksFileName)?"
        } else if lower.contains(".cedar") || lower.hasSuffix(".cedr") || lower.hasSuffix(".ceder") {
            hint = "; it looks like a policy file, but only names ending exactly in .cedar (lower case, nothing after it) are read"
        } else if lower.contains("entities") || lower.contains("custos") {
            hint = "; did you mean entities.json, custos.json or .custosignore?"
        }
        if name.hasPrefix(".") {
            hint += " (hidden names are not skipped: list editor and version-control files such as .git or .*.swp in \(ignoreFileName))"
        }
        if let last = name.unicodeScalars.last, last.properties.isWhitespace {
            hint += " (the name ends in white space)"
        }
        let known = entries.map { $0.isDirectory ? $0.pattern + "/" : $0.pattern }.joined(separator: ", ")
        return PolicyStoreError("\(path): not a file the daemon reads (it reads \(known))\(hint); rename or remove it, or list it in \(ignoreFileName) if it is meant to be there")
    }

    // MARK: the file system

    enum Kind { case file, directory, other }

    /// The real path of the folder itself (links in the path given are the operator's, and
    /// followed); every entry must resolve inside it.
    private static func resolveRoot(_ directory: String) throws(PolicyStoreError) -> String {
        guard let p = realpath(directory, nil) else {
            let e = errno
            if e == ENOENT || e == ENOTDIR {
                throw PolicyStoreError("\(directory): no such folder (a policies folder holds the *.cedar files, entities.json and guardrails/)")
            }
            throw PolicyStoreError("\(directory): cannot be opened (\(String(cString: strerror(e))))")
        }
        defer { free(p) }
        let root = String(cString: p)
        var st = stat()
        guard stat(root, &st) == 0 else { throw PolicyStoreError("\(directory): cannot be opened (\(String(cString: strerror(errno))))") }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw PolicyStoreError("\(directory): is a file, not a policies folder (a folder of *.cedar files, entities.json and guardrails/)")
        }
        return root
    }

    /// The names in a folder (without `.` and `..`), in byte order. A name that is not UTF-8
    /// cannot be matched against anything, so it is an error rather than a silent skip.
    private static func list(_ dir: String, shown: String) throws(PolicyStoreError) -> [String] {
        guard let d = opendir(dir) else {
            throw PolicyStoreError("\(shown): cannot list the folder (\(String(cString: strerror(errno))); check its permissions)")
        }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let bytes = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                throw PolicyStoreError("\(shown): holds a file whose name is not valid UTF-8 (\(String(decoding: bytes, as: UTF8.self))); rename it")
            }
            names.append(name)
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// What `dir/name` is, following a link only when it leads inside `root`. Nothing behind a
    /// link that leads elsewhere is opened.
    private static func resolve(_ name: String, in dir: String, root: String, shown: String) throws(PolicyStoreError) -> Kind {
        let full = dir + "/" + name
        var st = stat()
        guard lstat(full, &st) == 0 else {
            throw PolicyStoreError("\(shown): cannot be read (\(String(cString: strerror(errno))))")
        }
        var target = full
        if st.st_mode & S_IFMT == S_IFLNK {
            guard let p = realpath(full, nil) else {
                throw PolicyStoreError("\(shown): is a symbolic link that leads nowhere (its target does not exist); remove it or restore the target")
            }
            target = String(cString: p)
            free(p)
            guard inside(target, root) else {
                throw PolicyStoreError("\(shown): is a symbolic link that leads outside the policies folder; links may only point inside it (copy the file in instead)")
            }
            guard stat(target, &st) == 0 else {
                throw PolicyStoreError("\(shown): cannot be read (\(String(cString: strerror(errno))))")
            }
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    static func inside(_ path: String, _ root: String) -> Bool {
        let r = root == "/" ? "/" : root + "/"
        return path.utf8.count > r.utf8.count && path.utf8.starts(with: r.utf8)
    }

    /// Reads `dir/name`. The check that it leads inside `root` is made again on the opened
    /// descriptor, so a link swapped in after `resolve` looked is caught before any byte is
    /// read; a FIFO or device is refused without blocking.
    private static func readFile(name: String, in dir: String, root: String, shown: String) throws(PolicyStoreError) -> [UInt8] {
        let path = shown + "/" + name
        let fd = open(dir + "/" + name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            throw PolicyStoreError("\(path): cannot be read (\(String(cString: strerror(errno))); check its permissions)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw PolicyStoreError("\(path): is not a regular file")
        }
        var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &link, link.count - 1)
        guard n > 0 else {
            throw PolicyStoreError("\(path): cannot confirm where it leads (/proc/self/fd is unavailable); not read")
        }
        let opened = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard inside(opened, root) else {
            throw PolicyStoreError("\(path): leads outside the policies folder (it changed while being read); not read")
        }
        guard st.st_size <= maxFileBytes else {
            throw PolicyStoreError("\(path): \(st.st_size) bytes, over the limit of \(maxFileBytes) for one file of the folder")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size))
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let r = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if r < 0 {
                if errno == EINTR { continue }
                throw PolicyStoreError("\(path): cannot be read (\(String(cString: strerror(errno))))")
            }
            if r == 0 { break }
            // It may grow while being read.
            guard out.count + r <= maxFileBytes else {
                throw PolicyStoreError("\(path): over the limit of \(maxFileBytes) bytes for one file of the folder")
            }
            out.append(contentsOf: buf[0..<r])
        }
        return out
    }
}

/// `.custosignore`: one name or glob per line, for entries meant to be in the folder that the
/// daemon does not read. `#` starts a comment line; blank lines are skipped; surrounding
/// blanks are trimmed. `*` matches any run of characters and `?` one character, neither
/// matching `/`; a pattern without `/` matches a top-level name, `guardrails/NAME` an entry of
/// `guardrails/`. Names compare by bytes, so `*.bak` does not match `X.BAK`. A pattern never
/// hides a recognised file: `*.cedar` files are always read.
struct IgnoreList: Sendable {
    var patterns: [[UInt8]] = []

    static func parse(_ bytes: [UInt8], path: String) throws(PolicyStoreError) -> IgnoreList {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw PolicyStoreError("\(path):1:1: the file starts with a UTF-8 byte-order mark (EF BB BF); save it as UTF-8 without a BOM")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw PolicyStoreError("\(path): not valid UTF-8") }
        var list = IgnoreList()
        for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            var line = raw[...]
            while let f = line.first, f == 0x20 || f == 0x09 { line = line.dropFirst() }
            while let l = line.last, l == 0x20 || l == 0x09 || l == 0x0D { line = line.dropLast() }
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            list.patterns.append(Array(line))
        }
        return list
    }

    func matches(_ relativePath: String) -> Bool {
        let name = Array(relativePath.utf8)
        return patterns.contains { IgnoreList.glob($0[...], name[...]) }
    }

    /// Iterative glob with one backtrack point per `*` (linear in practice, never recursive).
    static func glob(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        let p = Array(pattern), n = Array(name)
        var pi = 0, ni = 0
        var star = -1, mark = 0
        while ni < n.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ni; pi += 1
            } else if pi < p.count, n[ni] != UInt8(ascii: "/"),
                      p[pi] == UInt8(ascii: "?") || p[pi] == n[ni] {
                pi += 1; ni += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "/"), n[ni] == UInt8(ascii: "/") {
                pi += 1; ni += 1
            } else if star >= 0, n[mark] != UInt8(ascii: "/") {
                mark += 1; ni = mark; pi = star + 1
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
