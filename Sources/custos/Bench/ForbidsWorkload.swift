import Foundation
import CustosJSON

/// The many-forbids benchmark workload (`custos bench cedar --workload forbids`; issue 18,
/// docs/benchmarks.md describes it). Where the grants workload mostly finds a few matching
/// permits by scope, here every request reaches all 14 forbids, and each reads context and
/// entity attributes, so what a decision costs is evaluating conditions, not finding them.
///
/// 3,000 entities: a 4-level role hierarchy (1 org > 4 divisions > 16 groups > 64 teams),
/// 40 studies, 7 actions (`read` and `annotate` in `access`; `write` and `delete` in
/// `modify`; `export`), 1,400 users in one or two teams, and 1,468 datasets, each in its
/// study. 25 rules: 11 permits by role and attribute, 14 forbids on region, purpose, consent,
/// retention, study and clearance. Requests draw a user, an action and a dataset with a
/// context of region, purpose, day, mfa and (mostly) the study worked on, biased towards what
/// the policies allow so that decisions are mixed. A fixed seed makes it reproducible.
struct ForbidsWorkload {
    var policyText = Self.policies
    var entitiesJSON: JSON = .array([])
    var requests: [JSON] = []

    static let divisions = 4, groups = 16, teams = 64, studies = 40, users = 1_400, datasets = 1_468
    static let regions = ["eu-central-1", "eu-west-1", "us-east-1", "ap-southeast-2"]
    static let purposes = ["primary_research", "secondary_research", "quality", "teaching", "commercial"]
    static let actions = ["read", "annotate", "write", "delete", "export"]

    static let policies = """
    @id("read-cleared")
    permit(principal in Role::"org", action == Action::"read", resource is Dataset)
    when { resource.classification <= principal.clearance };
    @id("div0-study-access")
    permit(principal in Role::"div0", action in Action::"access", resource is Dataset)
    when { principal.studies.contains(resource.study) };
    @id("div1-study-modify")
    permit(principal in Role::"div1", action in Action::"modify", resource is Dataset)
    when { resource.study in principal.studies };
    @id("grp5-export")
    permit(principal in Role::"grp5", action == Action::"export", resource is Dataset)
    when { context.mfa && resource.exportable };
    @id("owner")
    permit(principal, action in [Action::"read", Action::"annotate", Action::"write"], resource is Dataset)
    when { resource.owner == principal };
    @id("div2-study-s3")
    permit(principal in Role::"div2", action in Action::"access", resource in Study::"s3");
    @id("grp7-low-classification")
    permit(principal in Role::"grp7", action, resource is Dataset)
    when { resource.classification < 2 };
    @id("div3-export-eu")
    permit(principal in Role::"div3", action == Action::"export", resource is Dataset)
    when { context.region like "eu-*" && resource.region like "eu-*" };
    @id("team12-write-s12")
    permit(principal in Role::"team12", action == Action::"write", resource in Study::"s12");
    @id("grp2-delete-expired")
    permit(principal in Role::"grp2", action == Action::"delete", resource is Dataset)
    when { resource.retain_until < context.day };
    @id("div1-quality-read")
    permit(principal in Role::"div1", action == Action::"read", resource is Dataset)
    when { principal.training_current && context.purpose == "quality" };
    @id("region-allowed")
    forbid(principal, action, resource is Dataset)
    unless { resource.allowed_regions.contains(context.region) };
    @id("region-export")
    forbid(principal, action == Action::"export", resource is Dataset)
    when { resource.region != context.region };
    @id("purpose-consented")
    forbid(principal, action, resource is Dataset)
    unless { resource.consented_purposes.contains(context.purpose) };
    @id("purpose-no-teaching-changes")
    forbid(principal, action in Action::"modify", resource is Dataset)
    when { context.purpose == "teaching" };
    @id("consent-withdrawn")
    forbid(principal, action, resource is Dataset)
    when { resource.consent_withdrawn };
    @id("consent-expired")
    forbid(principal, action, resource is Dataset)
    when { resource has consent_expires && resource.consent_expires < context.day };
    @id("retention-hold")
    forbid(principal, action == Action::"delete", resource is Dataset)
    when { resource.legal_hold };
    @id("retention-period")
    forbid(principal, action == Action::"delete", resource is Dataset)
    when { context.day <= resource.retain_until };
    @id("retention-archived")
    forbid(principal, action in Action::"access", resource is Dataset)
    when { resource.retain_until + 3650 < context.day };
    @id("study-member")
    forbid(principal, action, resource is Dataset)
    unless { resource.study in principal.studies || principal in Role::"div3" };
    @id("study-context")
    forbid(principal, action, resource is Dataset)
    when { context has study && context.study != resource.study };
    @id("clearance")
    forbid(principal, action, resource is Dataset)
    when { resource.classification > principal.clearance };
    @id("clearance-export-mfa")
    forbid(principal, action == Action::"export", resource is Dataset)
    when { resource.classification >= 3 && !context.mfa };
    @id("clearance-trained")
    forbid(principal is User, action, resource is Dataset)
    unless { principal.active && principal.training_current };

    """

    init(requests count: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var ents: [JSON] = []
        func ref(_ t: String, _ id: String) -> JSON { .object(JSONObject(["type": .string(t), "id": .string(id)])) }
        func entityValue(_ t: String, _ id: String) -> JSON { .object(JSONObject(["__entity": ref(t, id)])) }
        func entity(_ t: String, _ id: String, _ attrs: [(String, JSON)], _ parents: [(String, String)]) -> JSON {
            .object(JSONObject([
                .init(key: "uid", value: ref(t, id)),
                .init(key: "attrs", value: .object(JSONObject(attrs.map { .init(key: $0.0, value: $0.1) }))),
                .init(key: "parents", value: .array(parents.map { ref($0.0, $0.1) })),
            ]))
        }
        // Distinct picks from 0..<n, in the order drawn.
        func pick(_ k: Int, of n: Int) -> [Int] {
            var out: [Int] = []
            while out.count < k { let x = rng.next(n); if !out.contains(x) { out.append(x) } }
            return out
        }

        ents.append(entity("Role", "org", [], []))
        for d in 0..<Self.divisions { ents.append(entity("Role", "div\(d)", [], [("Role", "org")])) }
        for g in 0..<Self.groups { ents.append(entity("Role", "grp\(g)", [], [("Role", "div\(g % Self.divisions)")])) }
        for t in 0..<Self.teams { ents.append(entity("Role", "team\(t)", [], [("Role", "grp\(t % Self.groups)")])) }
        for s in 0..<Self.studies { ents.append(entity("Study", "s\(s)", [("active", .bool(rng.next(8) != 0))], [])) }
        ents.append(entity("Action", "access", [], []))
        ents.append(entity("Action", "modify", [], []))
        ents.append(entity("Action", "read", [], [("Action", "access")]))
        ents.append(entity("Action", "annotate", [], [("Action", "access")]))
        ents.append(entity("Action", "write", [], [("Action", "modify")]))
        ents.append(entity("Action", "delete", [], [("Action", "modify")]))
        ents.append(entity("Action", "export", [], []))

        var userStudies: [[Int]] = []
        for u in 0..<Self.users {
            let studies = pick(1 + rng.next(3), of: Self.studies)
            userStudies.append(studies)
            let teams = pick(1 + rng.next(2), of: Self.teams)
            ents.append(entity("User", "u\(u)", [
                ("clearance", .int(Int64(rng.next(5)))),
                ("active", .bool(rng.next(20) != 0)),
                ("training_current", .bool(rng.next(10) != 0)),
                ("home_region", .string(Self.regions[rng.next(Self.regions.count)])),
                ("studies", .array(studies.map { entityValue("Study", "s\($0)") })),
            ], teams.map { ("Role", "team\($0)") }))
        }

        struct Dataset { var study: Int; var regions: [Int]; var purposes: [Int] }
        var datasets: [Dataset] = []
        for d in 0..<Self.datasets {
            let study = rng.next(Self.studies)
            let regions = pick(1 + rng.next(2), of: Self.regions.count)
            let purposes = pick(1 + rng.next(3), of: Self.purposes.count)
            datasets.append(Dataset(study: study, regions: regions, purposes: purposes))
            var attrs: [(String, JSON)] = [
                ("study", entityValue("Study", "s\(study)")),
                ("region", .string(Self.regions[regions[0]])),
                ("allowed_regions", .array(regions.map { .string(Self.regions[$0]) })),
                ("classification", .int(Int64(rng.next(5)))),
                ("consented_purposes", .array(purposes.map { .string(Self.purposes[$0]) })),
                ("consent_withdrawn", .bool(rng.next(20) == 0)),
                ("legal_hold", .bool(rng.next(10) == 0)),
                ("retain_until", .int(Int64(19_000 + rng.next(2_500)))),
                ("exportable", .bool(rng.next(3) != 0)),
                ("owner", entityValue("User", "u\(rng.next(Self.users))")),
            ]
            if rng.next(3) == 0 { attrs.append(("consent_expires", .int(Int64(19_500 + rng.next(1_500))))) }
            ents.append(entity("Dataset", "ds\(d)", attrs, [("Study", "s\(study)")]))
        }
        entitiesJSON = .array(ents)

        for _ in 0..<count {
            let u = rng.next(Self.users)
            // Mostly a dataset of one of the user's studies, in an allowed region, for a
            // consented purpose, so that some requests pass every forbid.
            var ds = rng.next(Self.datasets)
            if rng.next(5) != 0 {
                let want = userStudies[u][rng.next(userStudies[u].count)]
                for _ in 0..<64 where datasets[ds].study != want { ds = rng.next(Self.datasets) }
            }
            let d = datasets[ds]
            let region = rng.next(7) == 0 ? rng.next(Self.regions.count) : d.regions[rng.next(d.regions.count)]
            let purpose = rng.next(7) == 0 ? rng.next(Self.purposes.count) : d.purposes[rng.next(d.purposes.count)]
            var context: [JSONObject.Member] = [
                .init(key: "region", value: .string(Self.regions[region])),
                .init(key: "purpose", value: .string(Self.purposes[purpose])),
                .init(key: "day", value: .int(Int64(20_000 + rng.next(1_000)))),
                .init(key: "mfa", value: .bool(rng.next(4) != 0)),
            ]
            if rng.next(4) != 0 {
                let study = rng.next(10) == 0 ? rng.next(Self.studies) : d.study
                context.append(.init(key: "study", value: entityValue("Study", "s\(study)")))
            }
            requests.append(.object(JSONObject([
                .init(key: "principal", value: ref("User", "u\(u)")),
                .init(key: "action", value: ref("Action", Self.actions[rng.next(Self.actions.count)])),
                .init(key: "resource", value: ref("Dataset", "ds\(ds)")),
                .init(key: "context", value: .object(JSONObject(context))),
            ])))
        }
    }
}
