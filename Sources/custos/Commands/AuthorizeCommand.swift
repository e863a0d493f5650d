import Foundation
import Cedar
import CustosJSON

/// `custos authorize`: one-shot or batch Cedar authorization from files.
enum AuthorizeCommand {
    static let spec = CommandSpec(
        name: "authorize",
        summary: "Decide Cedar requests against a policy set and entities (no guardrails, no daemon).",
        usage: "custos authorize --policies FILE|DIR --entities FILE (--request FILE | --requests FILE)",
        options: [
            OptionSpec(name: "policies", valueName: "FILE|DIR", help: "A .cedar file, or a folder whose *.cedar files are loaded in name order."),
            OptionSpec(name: "entities", valueName: "FILE", help: "Cedar entities JSON (an array of {uid, attrs, parents, tags})."),
            OptionSpec(name: "request", valueName: "FILE", help: "One request: {\"principal\":{\"type\",\"id\"},\"action\":...,\"resource\":...,\"context\":{...}}."),
            OptionSpec(name: "requests", valueName: "FILE", help: "JSON lines, one request per line; prints one result line per request, in order."),
        ],
        details: """
        Prints {"decision":"allow"|"deny","reasons":[policies],"errors":[policies]} per request.
        A policy is named by its @id("...") annotation, as the daemon names it; one without @id by
        its position, policy0, policy1, ... across the *.cedar files in byte order of their names.
        (custos cedar-test keeps the upstream corpus's position ids.) Exactly Cedar: no guardrails,
        and a forbid that fails to evaluate is skipped. Exit status: 0 when every request was
        decided (allow or deny), 2 on unreadable or malformed input (with file and location).
        """)

    static func run(_ args: ParsedArguments) throws -> Int32 {
        let policiesPath = try args.required("policies")
        let entitiesPath = try args.required("entities")
        let single = args.value("request"), batch = args.value("requests")
        guard (single == nil) != (batch == nil) else {
            throw UsageError(message: "give exactly one of --request FILE or --requests FILE")
        }
        let policies: PolicySet
        do { policies = try PolicySet.load(path: policiesPath) } catch { throw UsageError(message: error.description) }
        let entities: EntityStore
        do { entities = try EntityStore.load(text: try IO.readText(entitiesPath), file: entitiesPath) } catch let e as FormatError {
            throw UsageError(message: e.description)
        }
        let out = StdoutBuffer()
        if let path = single {
            let json: JSON
            do { json = try JSON.parse(try IO.readText(path)) } catch let e as JSONParseError {
                throw UsageError(message: FormatError(file: path, path: "\(e.line):\(e.column)", "invalid JSON: \(e.message)").description)
            }
            let request: Request
            do { request = try Request(json: json) } catch { var e = error; e.file = path; throw UsageError(message: e.description) }
            var w = JSONWriter()
            policies.authorize(request, entities: entities).write(to: &w, policies: policies)
            w.byte(0x0A)
            out.write(w.bytes)
            return 0
        }
        // Batch: read the whole file, decide line by line, answer in order.
        guard let data = FileManager.default.contents(atPath: batch!) else {
            throw UsageError(message: "\(batch!): cannot be read")
        }
        var w = JSONWriter(capacity: 1 << 16)
        var lineNo = 0
        var failed = false
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var start = 0
            while start < raw.count {
                let end = memchr(raw.baseAddress! + start, 0x0A, raw.count - start)
                    .map { UnsafeRawPointer($0) - raw.baseAddress! } ?? raw.count
                lineNo += 1
                let line = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                start = end + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                do {
                    // Straight from jansson's tree when it can; anything else, errors
                    // included, through the JSON tree, which words the error.
                    let request = try Request.read(line) ?? Request(json: try JSON.parse(line))
                    policies.authorize(request, entities: entities).write(to: &w, policies: policies)
                } catch {
                    // A bad line is answered in place, so results stay aligned with requests.
                    failed = true
                    IO.printError("\(batch!):\(lineNo): \(error)")
                    w.raw(#"{"error":"#)
                    w.string("line \(lineNo): \(error)")
                    w.byte(UInt8(ascii: "}"))
                }
                w.byte(0x0A)
                if w.bytes.count >= 1 << 16 { out.write(w.bytes); w.bytes.removeAll(keepingCapacity: true) }
            }
        }
        out.write(w.bytes)
        out.flush()
        // The process ends right after: taking the loaded entities and policies apart object
        // by object would cost more than deciding a few thousand requests.
        _ = Unmanaged.passRetained(Keep(entities, policies))
        return failed ? 2 : 0
    }
}

/// Holds what a finished batch leaves for the process's exit to reclaim.
private final class Keep {
    let entities: EntityStore, policies: PolicySet
    init(_ entities: EntityStore, _ policies: PolicySet) { self.entities = entities; self.policies = policies }
}
