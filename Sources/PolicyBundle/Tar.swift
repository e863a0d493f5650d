/// The container of a bundle: a POSIX ustar archive of regular files only, written one way.
///
/// Every header has mode 0644, uid and gid 0, mtime 0, empty owner names, no prefix, and the
/// archive ends in two zero blocks. A reader that meets anything else (a link, a folder, a pax
/// or GNU extension header, a long name in `prefix`, a bad checksum, data after the end) refuses
/// it: one bundle has one byte string, so what was signed is what is read, and `tar tvf` can
/// still list it.
package enum Tar {
    package static let block = 512
    /// A name longer than the 100-byte `name` field would need `prefix` or a pax header.
    static let maxNameBytes = 100

    package struct Member: Equatable {
        package var name: String
        package var contents: [UInt8]
        package init(name: String, contents: [UInt8]) { self.name = name; self.contents = contents }
    }

    package static func write(_ members: [Member]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(members.reduce(2 * block) { $0 + block + padded($1.contents.count) })
        for m in members {
            out += header(name: m.name, size: m.contents.count)
            out += m.contents
            out += [UInt8](repeating: 0, count: padded(m.contents.count) - m.contents.count)
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    package static func padded(_ n: Int) -> Int { (n + block - 1) / block * block }

    static func header(name: String, size: Int) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ s: [UInt8], at offset: Int) { for (i, b) in s.enumerated() { h[offset + i] = b } }
        put(Array(name.utf8), at: 0)
        put(Array("0000644\0".utf8), at: 100)
        put(Array("0000000\0".utf8), at: 108)
        put(Array("0000000\0".utf8), at: 116)
        put(octal(UInt64(size), digits: 11) + [0], at: 124)
        put(Array("00000000000\0".utf8), at: 136)
        h[156] = UInt8(ascii: "0")
        put(Array("ustar\0".utf8), at: 257)
        put(Array("00".utf8), at: 263)
        put(Array("0000000\0".utf8), at: 329)
        put(Array("0000000\0".utf8), at: 337)
        put(Array("        ".utf8), at: 148)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(UInt64(sum), digits: 6) + [0, UInt8(ascii: " ")], at: 148)
        return h
    }

    static func octal(_ v: UInt64, digits: Int) -> [UInt8] {
        var out = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
        var x = v
        var i = digits - 1
        while x > 0 && i >= 0 {
            out[i] = UInt8(ascii: "0") + UInt8(x & 7)
            x >>= 3
            i -= 1
        }
        return out
    }

    /// The members of `bytes`, in order. `maxMembers` bounds what a hostile archive can make
    /// the reader hold besides its own bytes.
    package static func read(_ bytes: [UInt8], maxMembers: Int) throws(BundleError) -> [Member] {
        var members: [Member] = []
        var offset = 0
        while true {
            guard offset + block <= bytes.count else {
                throw .malformed("the archive ends inside a header at byte \(offset) (a bundle ends in two zero blocks)")
            }
            let h = bytes[offset..<offset + block]
            if h.allSatisfy({ $0 == 0 }) {
                guard offset + 2 * block == bytes.count, bytes[(offset + block)...].allSatisfy({ $0 == 0 }) else {
                    throw .malformed("data after the end of the archive at byte \(offset) (a bundle ends in exactly two zero blocks)")
                }
                return members
            }
            guard members.count < maxMembers else {
                throw .tooLarge("more than \(maxMembers) files in the archive")
            }
            let base = h.startIndex
            let type = h[base + 156]
            let nameField = h[base..<base + 100]
            let name = String(decoding: nameField.prefix(while: { $0 != 0 }), as: UTF8.self)
            switch type {
            case UInt8(ascii: "0"), 0: break
            case UInt8(ascii: "1"), UInt8(ascii: "2"):
                throw .malformed("\(name): is a link; a bundle holds regular files only")
            case UInt8(ascii: "5"):
                throw .malformed("\(name): is a folder entry; a bundle holds regular files only")
            default:
                throw .malformed("\(name): archive entry of type '\(String(decoding: [type], as: UTF8.self))' (an extension header, device or FIFO); a bundle holds regular files only")
            }
            guard let size = parseOctal(h[(base + 124)..<(base + 136)]), size <= UInt64(bytes.count) else {
                throw .malformed("\(name): the size field is not an octal number within the archive")
            }
            let start = offset + block
            let end = start + Int(size)
            guard end <= bytes.count else { throw .malformed("\(name): the archive ends inside its contents") }
            let member = Member(name: name, contents: Array(bytes[start..<end]))
            // One spelling only: a header that is not exactly the one `write` makes (mode,
            // owner, time, prefix, checksum, padding) is refused rather than interpreted.
            guard Array(h) == header(name: name, size: Int(size)),
                  String(validating: Array(nameField.prefix(while: { $0 != 0 })), as: UTF8.self) != nil else {
                throw .malformed("\(name): not a header custos writes (mode 0644, owner 0, time 0, no prefix, valid checksum); rebuild the bundle with custos bundle build")
            }
            let next = start + padded(Int(size))
            guard next <= bytes.count, bytes[end..<next].allSatisfy({ $0 == 0 }) else {
                throw .malformed("\(name): padding after its contents is not zero")
            }
            members.append(member)
            offset = next
        }
    }

    private static func parseOctal(_ field: ArraySlice<UInt8>) -> UInt64? {
        var v: UInt64 = 0
        var digits = 0
        for b in field {
            if b == 0 || b == UInt8(ascii: " ") { break }
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else { return nil }
            let (m, o) = v.multipliedReportingOverflow(by: 8)
            guard !o else { return nil }
            v = m + UInt64(b - UInt8(ascii: "0"))
            digits += 1
        }
        return digits == 0 ? nil : v
    }
}
