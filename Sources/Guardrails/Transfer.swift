import Cedar

/// What moving data is for; every kind is checked the same way (a failover or backup target
/// outside the EEA is a transfer like any other).
public enum TransferKind: String, Sendable, Hashable, CaseIterable {
    case replicate, backup, failover, copy, export
}

/// A request to move a dataset from one region to another.
public struct TransferRequest: Sendable, Hashable {
    public var principal: String
    public var dataset: String
    public var from: String
    public var to: String
    public var kind: TransferKind
    /// The basis the caller intends to rely on (`adequacy`, or a basis id from transfers.json);
    /// when given, the decision uses exactly that basis or denies.
    public var basis: String?

    public init(principal: String, dataset: String, from: String, to: String, kind: TransferKind, basis: String? = nil) {
        self.principal = principal; self.dataset = dataset; self.from = from; self.to = to
        self.kind = kind; self.basis = basis
    }
}

/// The residency enforcer for moves between regions (issue point 4, facts.md §1).
public enum TransferCheck {
    /// `holds` are the dataset's legal-hold matters from the consent store (the entity's own
    /// `legal_hold` attribute counts too).
    /// `holdsUnavailable` says why the holds cannot be relied on (see `RetentionCheck.check`):
    /// only a move of data past its expiry depends on them, and is then denied `state.stale`.
    public static func decide(_ request: TransferRequest, data: DatasetAttributes, config: GuardrailConfig,
                              holds: [String] = [], holdsUnavailable: String? = nil, now: CedarDatetime) -> GuardrailOutcome {
        guard config.status.isActive else { return GuardrailOutcome() }
        // Every kind of transfer makes or refreshes a copy. Past the disposal date, with no hold
        // keeping the data, that copy would keep it beyond its retention wherever it goes
        // (nothing kept past its disposal date), so it is refused whatever the destination.
        // Under a hold the data must be kept, and keeping it safe by backup or replication is
        // part of that.
        var retention: [Denial] = []
        if data.retentionClass != nil, config.retention != nil {
            let st = RetentionCheck.status(data, config: config, holds: holds, now: now)
            if st.expired, let why = holdsUnavailable {
                // Past its expiry only a hold can keep the data, so the holds decide.
                retention.append(Denial(.stateStale,
                    "\(request.kind.rawValue) of dataset \(data.id): it passed its retention expiry and whether a legal hold keeps it cannot be checked: \(why)"))
            } else if st.disposalDue, let e = st.expiry {
                retention.append(Denial(.retentionExpired,
                    "\(request.kind.rawValue) of dataset \(data.id): it passed its retention expiry \(CivilTime.format(e)) and is due for disposal; a copy would keep it past that date"))
            }
        }
        let outcome = residency(request, data: data, config: config, now: now)
        if retention.isEmpty { return outcome }
        return GuardrailOutcome(denials: retention + outcome.denials)
    }

    private static func residency(_ request: TransferRequest, data: DatasetAttributes, config: GuardrailConfig,
                                  now: CedarDatetime) -> GuardrailOutcome {
        guard let regions = config.regions else { return GuardrailOutcome() }
        var denials: [Denial] = []
        for (field, name) in [("from", request.from), ("to", request.to)] where regions.regions.scalarLookup(name) == nil {
            denials.append(Denial(.residencyUnknownLocation, "\(field) region \"\(name)\" is not defined in guardrails/regions.json"))
        }
        if !denials.isEmpty { return GuardrailOutcome(denials: denials) }
        // Every hop needs its own basis (Art 44), so only the destination decides: a move out of
        // an adequate country onward to a third country is checked like one from Frankfurt.
        let dest = regions.regions.scalarLookup(request.to)!
        guard ResidencyCheck.governs(data, config: config) else { return GuardrailOutcome() }
        switch ResidencyCheck.verdict(data, region: dest, config: config, now: now) {
        case .unrestricted, .allowed(nil):
            // Inside the EEA (or data the residency rule does not govern) no basis is needed.
            return GuardrailOutcome()
        case .denied(let d):
            return GuardrailOutcome(denials: [Denial(d.code, "\(request.kind.rawValue) of \(d.message)")])
        case .allowed(let o?):
            guard let wanted = request.basis else { return GuardrailOutcome(obligations: [o]) }
            if case .transferBasis(_, _, let used) = o, basisMatches(wanted, used) {
                return GuardrailOutcome(obligations: [o])
            }
            // The named basis must itself apply; another one applying is not what was asked.
            if let alt = namedBasis(wanted, data: data, region: dest, config: config, now: now) {
                return GuardrailOutcome(obligations: [alt])
            }
            return GuardrailOutcome(denials: [Denial(.residencyCrossBorder,
                "\(request.kind.rawValue) of dataset \(data.id) to \(dest.name): basis \"\(wanted)\" does not apply to this data and destination")])
        }
    }

    static func basisMatches(_ wanted: String, _ used: String) -> Bool {
        if wanted == "adequacy" { return used.hasPrefix("adequacy:") }
        return used.hasPrefix("scc:\(wanted) ") || used.hasPrefix("bcr:\(wanted) ")
    }

    static func namedBasis(_ wanted: String, data: DatasetAttributes, region: Region, config: GuardrailConfig,
                           now: CedarDatetime) -> Obligation? {
        guard wanted != "adequacy", let b = config.transfers?.bases.first(where: { $0.id.scalarEquals(wanted) }),
              b.covers(dataClass: data.dataClass) else { return nil }
        switch b.kind {
        case .scc where b.regions.containsScalar(region.name):
            return .transferBasis(dataset: data.id, destination: region.name, basis: "scc:\(b.id) (\(b.reference); TIA \(b.tia))")
        case .bcr where b.destinations.contains(region.jurisdiction) && region.group != nil && region.group!.scalarEquals(b.group ?? ""):
            return .transferBasis(dataset: data.id, destination: region.name, basis: "bcr:\(b.id) (\(b.reference); TIA \(b.tia))")
        default: return nil
        }
    }
}
