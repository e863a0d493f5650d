import Cedar
import CustosJSON

/// One retention rule (facts.md §3 table): data of `dataClass` under `jurisdiction` is kept at
/// least `period` after the `trigger` event.
public struct RetentionSchedule: Sendable, Hashable {
    public var id: String
    public var dataClass: String
    /// A jurisdiction code, `EEA` for any EEA member, or `*` for everywhere.
    public var jurisdiction: String
    public var period: RetentionPeriod
    public var trigger: String
    public var citation: String

    func applies(dataClass c: String, residency: String?, eea: Set<String>) -> Bool {
        guard dataClass.scalarEquals(c) else { return false }
        if jurisdiction.utf8.elementsEqual("*".utf8) { return true }
        guard let residency else { return false }
        if jurisdiction.utf8.elementsEqual("EEA".utf8) { return eea.contains(residency) }
        return residency.scalarEquals(jurisdiction)
    }
}

/// retention.json: the schedules.
public struct RetentionConfig: Sendable {
    public var lastReviewed: CedarDatetime
    public var schedules: [RetentionSchedule]
    /// Data classes that have at least one schedule.
    public var dataClasses: Set<String>

    static let file = "guardrails/retention.json"

    static func parse(_ json: JSON, regions: RegionsConfig?) throws(GuardrailConfigError) -> RetentionConfig {
        let r = try ConfigReader(file: file, path: "$", json: json)
        try r.only(["last_reviewed", "illustrative", "schedules"])
        let reviewed = try r.lastReviewed()
        _ = try r.bool("illustrative", default: false)
        var out: [RetentionSchedule] = []
        for s in try r.array("schedules") {
            try s.only(["id", "data_class", "jurisdiction", "period", "trigger", "citation"])
            let id = try s.string("id")
            if out.contains(where: { $0.id.scalarEquals(id) }) { throw s.error("id", "schedule id \"\(id)\" is used twice") }
            let raw = try s.string("jurisdiction")
            let j = raw == "*" || raw == "EEA" ? raw : Jurisdictions.normalise(raw)
            if j != "*", j != "EEA" {
                let known = regions?.isKnownJurisdiction(j) ?? Jurisdictions.iso3166Alpha2.contains(j)
                guard known else {
                    throw s.error("jurisdiction", "\"\(raw)\" is not an ISO 3166-1 alpha-2 code, a declared jurisdiction, \"EEA\" or \"*\"")
                }
            }
            let periodText = try s.string("period")
            guard let period = RetentionPeriod.parse(periodText) else {
                throw s.error("period", "expected an ISO 8601 period such as \"P25Y\", \"P6M\" or \"P1Y6M\", got \"\(periodText)\"")
            }
            let trigger = try s.string("trigger")
            guard trigger.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
                throw s.error("trigger", "a trigger is an event name in lower_snake_case (e.g. \"end_of_trial\"), got \"\(trigger)\"")
            }
            let sched = RetentionSchedule(id: id, dataClass: try s.string("data_class"), jurisdiction: j,
                                          period: period, trigger: trigger, citation: try s.string("citation"))
            if let dup = out.first(where: {
                $0.dataClass.scalarEquals(sched.dataClass) && $0.jurisdiction.scalarEquals(j)
                    && $0.trigger.scalarEquals(trigger) && $0.period == period
            }) {
                throw s.error(nil, "duplicates schedule \"\(dup.id)\" (same data class, jurisdiction, trigger and period)")
            }
            out.append(sched)
        }
        return RetentionConfig(lastReviewed: reviewed, schedules: out, dataClasses: Set(out.map(\.dataClass)))
    }
}
