/// S3 REST calls as an authorizer sees them: which IAM action a method, path and query mean.
/// Path-style addressing only (`/bucket/key`); the action names are AWS's (and MinIO's).
public enum S3Request {
    /// Splits `/bucket/key/with/slashes` into bucket and key ("" for a bucket-level call);
    /// nil for the service root (`/`, ListAllMyBuckets), which names no bucket.
    public static func split(path: String) -> (bucket: String, key: String)? {
        var p = Substring(path)
        while p.hasPrefix("/") { p = p.dropFirst() }
        guard !p.isEmpty else { return nil }
        if let slash = p.firstIndex(of: "/") {
            return (String(p[..<slash]), String(p[p.index(after: slash)...]))
        }
        return (String(p), "")
    }

    /// The IAM action of a REST call; nil when the call is not one the front door knows (it is
    /// then refused, never guessed). `copySource`: the request carries `x-amz-copy-source`.
    public static func action(method: String, key: String, arguments: [(String, String?)], copySource: Bool) -> String? {
        func has(_ name: String) -> Bool { arguments.contains { $0.0 == name } }
        if key.isEmpty {
            switch method {
            case "GET", "HEAD":
                if has("replication") { return "s3:GetReplicationConfiguration" }
                if has("versions") { return "s3:ListBucketVersions" }
                if has("uploads") { return "s3:ListBucketMultipartUploads" }
                if has("policy") || has("acl") || has("tagging") || has("lifecycle") || has("object-lock") { return nil }
                return "s3:ListBucket"
            case "PUT":
                if has("replication") { return "s3:PutReplicationConfiguration" }
                if arguments.isEmpty { return "s3:CreateBucket" }
                return nil
            case "DELETE":
                if has("replication") { return "s3:PutReplicationConfiguration" }
                if arguments.isEmpty { return "s3:DeleteBucket" }
                return nil
            case "POST":
                // DeleteObjects: the keys are in the XML body, which an authorizer does not see.
                if has("delete") { return "s3:DeleteObject" }
                return nil
            default:
                return nil
            }
        }
        switch method {
        case "GET", "HEAD":
            if has("tagging") { return "s3:GetObjectTagging" }
            if has("uploadId") { return "s3:ListMultipartUploadParts" }
            if has("retention") { return "s3:GetObjectRetention" }
            if has("legal-hold") { return "s3:GetObjectLegalHold" }
            if has("acl") || has("attributes") || has("torrent") { return nil }
            return has("versionId") ? "s3:GetObjectVersion" : "s3:GetObject"
        case "PUT":
            // A copy also reads its source, which this one decision would not cover.
            if copySource { return nil }
            if has("tagging") { return "s3:PutObjectTagging" }
            if has("retention") { return "s3:PutObjectRetention" }
            if has("legal-hold") { return "s3:PutObjectLegalHold" }
            if has("acl") { return nil }
            return "s3:PutObject"  // also UploadPart (partNumber & uploadId)
        case "POST":
            if has("uploads") || has("uploadId") { return "s3:PutObject" }  // create / complete multipart
            return nil
        case "DELETE":
            if has("uploadId") { return "s3:AbortMultipartUpload" }
            if has("tagging") { return "s3:DeleteObjectTagging" }
            return has("versionId") ? "s3:DeleteObjectVersion" : "s3:DeleteObject"
        default:
            return nil
        }
    }
}

/// Query strings and percent-encoding, for the parts of a request a proxy passes as text
/// (nginx's `X-Original-URI`, RGW's `params`).
enum URLText {
    /// `a=1&b&c=x%20y` -> [(a, 1), (b, nil), (c, "x y")]; nil when an escape is malformed.
    static func arguments(_ query: Substring) -> [(String, String?)]? {
        var out: [(String, String?)] = []
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let eq = part.firstIndex(of: "=") {
                guard let k = decode(part[..<eq], plus: true), let v = decode(part[part.index(after: eq)...], plus: true) else { return nil }
                out.append((k, v))
            } else {
                guard let k = decode(part, plus: true) else { return nil }
                out.append((k, nil))
            }
        }
        return out
    }

    /// Percent-decodes; nil for a malformed escape or bytes that are not UTF-8.
    static func decode(_ s: Substring, plus: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let h = it.next(), let l = it.next(), let hv = hex(h), let lv = hex(l) else { return nil }
                bytes.append(hv << 4 | lv)
            } else if plus && c == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A path a proxy serves as it reads: no `.` or `..` segments (which would let a prefix
    /// route match a path that resolves elsewhere) and no NUL.
    static func isNormalized(_ path: String) -> Bool {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { return false }
        for seg in path.split(separator: "/", omittingEmptySubsequences: false) where seg == "." || seg == ".." {
            return false
        }
        return true
    }
}
