import Foundation
import Cedar
import CustosJSON

/// The benchmark workload for in-process Cedar authorization (docs/benchmarks.md describes it).
///
/// 10,000 entities in 3-level hierarchies: 20 departments > 200 teams > 5,000 users
/// (each user in 1 or 2 teams), and 50 projects > 500 folders > 4,230 documents, plus 4
/// actions (read and write are members of `Action::"access"`). Policies cycle through five
/// realistic shapes: team-to-project grants with a clearance check, per-user folder grants,
/// department-to-project reads of public documents with MFA, team-to-project forbids outside
/// the corporate network, and owner access within a folder. Every policy targets a distinct
/// pair of entities (as a real policy set has no duplicates), so 20 and 1,000 policies differ
/// only in how many distinct grants exist. Requests pick a random user, action and document.
/// A fixed seed makes it reproducible.
struct CedarWorkload {
    var policyText = ""
    var entitiesJSON: JSON = .array([])
    var requests: [JSON] = []

    static let departments = 20, teams = 200, users = 5_000, projects = 50, folders = 500, documents = 4_230

    /// The workload's schema: every policy shape validates against it (`custos bench validate`).
    static let schemaText = """
    entity Dept = { name: String };
    entity Team in [Dept];
    entity User in [Team] = { clearance: Long, active: Bool, email: String };
    entity Project;
    entity Folder in [Project];
    entity Doc in [Folder] = { classification: Long, public: Bool, owner: User };
    type RequestContext = { mfa: Bool, hour: Long, source_ip: ipaddr };
    action access;
    action read, write in [access] appliesTo { principal: [User], resource: [Doc], context: RequestContext };
    action delete, share appliesTo { principal: [User], resource: [Doc], context: RequestContext };

    """

    init(policies: Int, requests count: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var ents: [JSON] = []
        func entity(_ t: String, _ id: String, _ attrs: [(String, JSON)], _ parents: [(String, String)]) -> JSON {
            .object(JSONObject([
                .init(key: "uid", value: .object(JSONObject(["type": .string(t), "id": .string(id)]))),
                .init(key: "attrs", value: .object(JSONObject(attrs.map { .init(key: $0.0, value: $0.1) }))),
                .init(key: "parents", value: .array(parents.map { .object(JSONObject(["type": .string($0.0), "id": .string($0.1)])) })),
            ]))
        }
        for d in 0..<Self.departments { ents.append(entity("Dept", "d\(d)", [("name", .string("Department \(d)"))], [])) }
        for t in 0..<Self.teams { ents.append(entity("Team", "t\(t)", [], [("Dept", "d\(t % Self.departments)")])) }
        for u in 0..<Self.users {
            var parents = [("Team", "t\(rng.next(Self.teams))")]
            if rng.next(2) == 0 { parents.append(("Team", "t\(rng.next(Self.teams))")) }
            if parents.count == 2 && parents[0].1 == parents[1].1 { parents.removeLast() }
            ents.append(entity("User", "u\(u)", [
                ("clearance", .int(Int64(rng.next(6)))),
                ("active", .bool(rng.next(10) != 0)),
                ("email", .string("user\(u)@example.org")),
            ], parents))
        }
        for p in 0..<Self.projects { ents.append(entity("Project", "p\(p)", [], [])) }
        for f in 0..<Self.folders { ents.append(entity("Folder", "f\(f)", [], [("Project", "p\(f % Self.projects)")])) }
        for d in 0..<Self.documents {
            ents.append(entity("Doc", "doc\(d)", [
                ("classification", .int(Int64(rng.next(6)))),
                ("public", .bool(rng.next(4) == 0)),
                ("owner", .object(JSONObject(["__entity": .object(JSONObject(["type": .string("User"), "id": .string("u\(rng.next(Self.users))")]))]))),
            ], [("Folder", "f\(rng.next(Self.folders))")]))
        }
        ents.append(entity("Action", "access", [], []))
        ents.append(entity("Action", "read", [], [("Action", "access")]))
        ents.append(entity("Action", "write", [], [("Action", "access")]))
        ents.append(entity("Action", "delete", [], []))
        ents.append(entity("Action", "share", [], []))
        entitiesJSON = .array(ents)

        var text = ""
        // Draw targets without replacement per shape, so no two policies are the same.
        var used: [Set<Int>] = Array(repeating: [], count: 5)
        func distinct(_ shape: Int, _ a: Int, _ b: Int) -> (Int, Int) {
            while true {
                let x = rng.next(a), y = rng.next(b)
                if used[shape].insert(x * b + y).inserted { return (x, y) }
            }
        }
        for i in 0..<policies {
            switch i % 5 {
            case 0:
                let pair = distinct(0, Self.teams, Self.projects)
                text += """
                @id("team-grant-\(i)")
                permit(principal in Team::"t\(pair.0)", action in Action::"access", resource in Project::"p\(pair.1)")
                when { principal.active && resource.classification <= principal.clearance };\n
                """
            case 1:
                let pair = distinct(1, Self.users, Self.folders)
                text += """
                @id("user-folder-\(i)")
                permit(principal == User::"u\(pair.0)", action == Action::"read", resource in Folder::"f\(pair.1)");\n
                """
            case 2:
                let pair = distinct(2, Self.departments, Self.projects)
                text += """
                @id("dept-public-\(i)")
                permit(principal in Dept::"d\(pair.0)", action == Action::"read", resource in Project::"p\(pair.1)")
                when { resource.public && context.mfa };\n
                """
            case 3:
                let pair = distinct(3, Self.teams, Self.projects)
                text += """
                @id("team-network-\(i)")
                forbid(principal in Team::"t\(pair.0)", action, resource in Project::"p\(pair.1)")
                unless { context.source_ip.isInRange(ip("10.0.0.0/8")) };\n
                """
            default:
                let folder = distinct(4, Self.folders, 1).0
                text += """
                @id("owner-\(i)")
                permit(principal, action in [Action::"read", Action::"write", Action::"share"], resource is Doc in Folder::"f\(folder)")
                when { resource.owner == principal && context.hour >= 6 && context.hour < 22 };\n
                """
            }
        }
        policyText = text

        let actions = ["read", "write", "delete", "share"]
        for _ in 0..<count {
            let ip = rng.next(4) == 0 ? "192.168.\(rng.next(256)).\(rng.next(256))" : "10.\(rng.next(256)).\(rng.next(256)).\(rng.next(256))"
            requests.append(.object(JSONObject([
                .init(key: "principal", value: .object(JSONObject(["type": .string("User"), "id": .string("u\(rng.next(Self.users))")]))),
                .init(key: "action", value: .object(JSONObject(["type": .string("Action"), "id": .string(actions[rng.next(actions.count)])]))),
                .init(key: "resource", value: .object(JSONObject(["type": .string("Doc"), "id": .string("doc\(rng.next(Self.documents))")]))),
                .init(key: "context", value: .object(JSONObject([
                    .init(key: "mfa", value: .bool(rng.next(3) != 0)),
                    .init(key: "hour", value: .int(Int64(rng.next(24)))),
                    .init(key: "source_ip", value: .object(JSONObject(["__extn": .object(JSONObject(["fn": .string("ip"), "arg": .string(ip)]))]))),
                ]))),
            ])))
        }
    }
}

/// A small, fast, reproducible generator (not for anything secret).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
