import Cedar

/// What a `decide` request tells the guardrails beyond Cedar's principal/action/resource.
public struct GuardrailRequest: Sendable {
    public var operation: RetentionCheck.Operation
    /// The region where the processing happens (the caller's or the node's), a regions.json name.
    public var region: String?
    public var purpose: String?
    /// The study environment the request runs in, if it declares one.
    public var study: String?
    /// The principal's `studies` attribute: isolation requires membership of the data's study,
    /// and takes it as the environment when `study` is nil.
    public var principalStudies: Set<String>?
    /// The decision time: the daemon's clock, or a fixed time from the test runner.
    public var now: CedarDatetime

    public init(operation: RetentionCheck.Operation = .use, region: String? = nil, purpose: String? = nil,
                study: String? = nil, principalStudies: Set<String>? = nil, now: CedarDatetime) {
        self.operation = operation; self.region = region; self.purpose = purpose
        self.study = study; self.principalStudies = principalStudies; self.now = now
    }

    /// The default mapping from a Cedar action id to what it does with the data: deleting,
    /// erasing, disposing and purging delete; everything else uses the data.
    public static func operation(forAction actionID: String) -> ActionKind {
        switch actionID {
        case "delete", "erase", "dispose", "purge": .delete
        default: .use
        }
    }

    /// The mapping `guardrails/actions.json` declares, else the default one.
    @inline(__always) public static func operation(forAction actionID: String, actions: ActionsConfig?) -> ActionKind {
        actions?.kind(of: actionID) ?? operation(forAction: actionID)
    }
}

/// The guardrails a `decide` runs after Cedar: pure functions of configuration, data
/// attributes, request, consent/hold snapshot and the `now` passed in.
public enum Guardrails {
    /// Every guardrail over every data entity the request touches. All denials are collected
    /// (so the caller sees every reason), and obligations are kept only when allowed.
    public static func evaluate(_ datasets: [DatasetAttributes], request: GuardrailRequest,
                                config: GuardrailConfig, consent: ConsentSnapshot) -> GuardrailOutcome {
        guard config.status.isActive else { return GuardrailOutcome() }
        var out = GuardrailOutcome()
        for d in datasets {
            // A delete is not processing in another region or for a purpose; it is governed by
            // retention and holds (facts.md §3) and isolation. A metadata read processes none of
            // the personal data (facts.md §1, §2 govern that processing); isolation still holds,
            // since which data a study holds is that study's information.
            if request.operation == .use {
                switch ResidencyCheck.check(d, region: request.region, config: config, now: request.now) {
                case .unrestricted, .allowed(nil): break
                case .allowed(let o?): out.obligations.append(o)
                case .denied(let den): out.denials.append(den)
                }
                switch ConsentCheck.check(d, purpose: request.purpose, config: config, consent: consent, now: request.now) {
                case .success(let o): if let o, !out.obligations.contains(o) { out.obligations.append(o) }
                case .failure(let den): out.denials.append(den)
                }
            }
            out.denials += IsolationCheck.check(d, requestStudy: request.study, principalStudies: request.principalStudies)
            if request.operation != .metadata {
                let r = RetentionCheck.check(d, operation: request.operation, config: config,
                                             holds: consent.holdMatters(dataset: d.id, at: request.now),
                                             holdsUnavailable: consent.unavailable, now: request.now)
                out.denials += r.denials
                out.obligations += r.obligations
            }
        }
        if !out.denials.isEmpty { out.obligations = [] }
        return out
    }
}
