import Foundation
import Cedar
import CustosDaemon
import CustosJSON
import CustosServer

extension BenchCommand {
    /// `custos bench validate`: strict validation speed. Without --corpus, the `bench cedar`
    /// workload's N policies against its schema (`CedarWorkload.schemaText`); with --corpus
    /// DIR (the extracted upstream corpus-tests folder), every test file's policies against
    /// its own schema. Each round validates everything once; prints the median round and the
    /// spread (fastest and slowest round).
    static func runValidate(_ args: ParsedArguments) throws -> Int32 {
        let rounds = try args.int("rounds", default: 20)
        guard rounds > 0 else { throw UsageError(message: "--rounds must be positive") }
        if let folder = args.value("folder") { return try runValidateRequests(folder: folder, rounds: rounds, args) }
        var work: [(Validator, PolicySet)] = []
        var label: String
        let loadStart = monotonicNanos()
        if let dir = args.value("corpus") {
            let files = IntegrationTestRunner.testFiles(under: dir)
            guard !files.isEmpty else { throw UsageError(message: "\(dir): no test files") }
            var schemas: [String: Validator] = [:]
            for f in files {
                let json = try JSON.parse(try IO.readText(f))
                guard let p = json["policies"]?.stringValue, let s = json["schema"]?.stringValue else { continue }
                let root = (dir as NSString).deletingLastPathComponent
                let schemaPath = (root as NSString).appendingPathComponent(s)
                if schemas[schemaPath] == nil {
                    schemas[schemaPath] = Validator(schema: try Schema.parse(cedarSchema: try IO.readText(schemaPath), file: schemaPath))
                }
                work.append((schemas[schemaPath]!, try PolicySet.load(path: (root as NSString).appendingPathComponent(p))))
            }
            label = "corpus: \(work.count) test files, \(work.reduce(0) { $0 + $1.1.policies.count }) policies, \(schemas.count) schemas"
        } else {
            let n = try args.int("policies", default: 1000)
            guard n > 0 else { throw UsageError(message: "--policies must be positive") }
            let workload = CedarWorkload(policies: n, requests: 0, seed: UInt64(try args.int("seed", default: 1)))
            let schema = try Schema.parse(cedarSchema: CedarWorkload.schemaText, file: "schema.cedarschema")
            work = [(Validator(schema: schema), try PolicySet.parse(workload.policyText, file: "policies.cedar"))]
            label = "workload: \(n) policies, \(schema.entityTypes.count) entity types, \(schema.actions.count) actions, \(schema.environments.count) request environments"
        }
        let load = Double(monotonicNanos() - loadStart) / 1e6
        var times: [Double] = []
        var errors = 0
        for _ in 0..<rounds {
            errors = 0
            let t0 = monotonicNanos()
            for (v, set) in work { errors += v.validate(set).errors.count }
            times.append(Double(monotonicNanos() - t0) / 1e6)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        print("validate \(label)")
        print(String(format: "  parse %.1f ms once; validate: median %.1f ms over %d rounds (fastest %.1f, slowest %.1f); %d errors",
                     load, median, rounds, times.first!, times.last!, errors))
        return 0
    }

    /// `custos bench validate --folder DIR [--request FILE]`: what `validate_requests` adds to
    /// reading a `decide` request, in-process. Each round reads the request 100,000 times as
    /// `decide` reads it, alternately without and with the folder's schema; prints the median
    /// nanoseconds per request of each and the spread over the rounds.
    static func runValidateRequests(folder: String, rounds: Int, _ args: ParsedArguments) throws -> Int32 {
        let snapshot: PolicySnapshot
        do { snapshot = try PolicyStore.load(directory: folder) } catch { throw UsageError(message: error.message) }
        guard let schema = snapshot.schema else { throw UsageError(message: "\(folder): has no schema (schema.cedarschema or schema.cedarschema.json)") }
        let text = try args.value("request").map { try IO.readText($0) } ?? defaultDecideParams
        let json = try JSON.parse(text)
        do { _ = try DecideParams.parse(json, schema: schema) } catch {
            throw UsageError(message: "the request does not conform to the schema: \(error.message)")
        }
        let n = 100_000
        var plain: [Double] = [], checked: [Double] = []
        func time(_ schema: Schema?) throws(RPCError) -> Double {
            let t0 = monotonicNanos()
            for _ in 0..<n { _ = try DecideParams.parse(json, schema: schema) }
            return Double(monotonicNanos() - t0) / Double(n)
        }
        _ = try time(nil); _ = try time(schema)  // warm-up
        for _ in 0..<rounds {
            plain.append(try time(nil))
            checked.append(try time(schema))
        }
        print("decide request (\(text.utf8.count) bytes) read \(n) times a round, \(rounds) alternating rounds, schema of \(folder)")
        print(String(format: "  without the schema: median %.0f ns per request (fastest %.0f, slowest %.0f)", median(plain), plain.min()!, plain.max()!))
        print(String(format: "  validated against it: median %.0f ns per request (fastest %.0f, slowest %.0f)", median(checked), checked.min()!, checked.max()!))
        print(String(format: "  validate_requests adds %.0f ns per request (median of the rounds' differences)", median(zip(checked, plain).map { $0 - $1 })))
        return 0
    }
}
