import Foundation

/// Why a policy source could not be loaded.
public enum PolicyLoadError: Error, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case parse(ParseError)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "\(p): \(r)"
        case .parse(let e): e.description
        }
    }
}

extension PolicySet {
    /// Loads one `.cedar` file, or every `*.cedar` file of a folder (not recursive) in byte
    /// order of their names; ids run `policy0, policy1, ...` across files in that order.
    public static func load(path: String) throws(PolicyLoadError) -> PolicySet {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw .unreadable(path: path, reason: "no such file or folder")
        }
        var files: [String] = [path]
        if isDir.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw .unreadable(path: path, reason: "cannot list folder")
            }
            files = names.filter { $0.hasSuffix(".cedar") }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                .map { (path as NSString).appendingPathComponent($0) }
        }
        var asts: [PolicyAST] = []
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw .unreadable(path: f, reason: "cannot be read") }
            // Decoded as is: Foundation's decoding would drop a leading byte-order mark, and the
            // parser must see it to give the verdict the daemon and `custos check` give.
            guard let text = String(validating: [UInt8](data), as: UTF8.self) else {
                throw .unreadable(path: f, reason: "not valid UTF-8")
            }
            do { asts += try CedarParser.parsePolicies(text, file: f) } catch { throw .parse(error) }
        }
        do { return try PolicySet(asts) } catch { throw .parse(error) }
    }
}
