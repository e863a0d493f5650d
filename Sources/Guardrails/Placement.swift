import Cedar

/// A job asking where it may run (the `place` params' `job`).
public struct PlacementJob: Sendable, Hashable {
    public var id: String
    public var principal: String
    public var study: String?
    public var purpose: String?
    public var datasets: [String]
    public var gxp: Bool
    /// Container image reference; GxP jobs must pin it by digest (`name@sha256:...`).
    public var image: String?

    public init(id: String, principal: String, study: String? = nil, purpose: String? = nil,
                datasets: [String], gxp: Bool = false, image: String? = nil) {
        self.id = id; self.principal = principal; self.study = study; self.purpose = purpose
        self.datasets = datasets; self.gxp = gxp; self.image = image
    }
}

/// A candidate node.
public struct PlacementNode: Sendable, Hashable {
    public var name: String
    public var region: String?
    public var labels: [String: String]

    public init(name: String, region: String?, labels: [String: String] = [:]) {
        self.name = name; self.region = region; self.labels = labels
    }
}

/// `place`'s answer: nodes allowed (in input order), nodes rejected with every reason, and the
/// obligations of the allowed placement (legal basis per purpose, transfer basis per node that
/// is outside the EEA).
public struct PlacementResult: Sendable {
    public var allowed: [String] = []
    public var rejected: [(node: String, reasons: [Denial])] = []
    /// Obligations that hold wherever the job runs.
    public var obligations: [Obligation] = []
    /// Extra obligations for allowed nodes outside the EEA: the transfer bases used, per node,
    /// in the order of `allowed`.
    public var nodeObligations: [(node: String, obligations: [Obligation])] = []

    /// The transfer bases for one allowed node (empty inside the EEA).
    public func obligations(forNode name: String) -> [Obligation] {
        nodeObligations.first { $0.node.scalarEquals(name) }?.obligations ?? []
    }
}

/// The scheduler hook (issue point 3).
public enum Placement {
    /// Resolves a dataset id to its attributes: nil when the entity store has no such dataset,
    /// a thrown `Denial` when its attributes are malformed.
    public typealias Resolver = (String) throws(Denial) -> DatasetAttributes?

    /// A node is allowed only if every dataset may be processed in its region, it is not
    /// dedicated to another study, the principal may place jobs (`mayPlace`, the daemon's
    /// Cedar check), and for GxP jobs the node and image are qualified.
    ///
    /// Cost: the job-level checks and one verdict per distinct region are computed once; each
    /// node is then a dictionary look-up plus, for GxP or dedicated nodes, a label look-up.
    public static func place(job: PlacementJob, nodes: [PlacementNode], config: GuardrailConfig,
                             consent: ConsentSnapshot, now: CedarDatetime,
                             resolve: Resolver, mayPlace: (PlacementJob) -> Bool) -> PlacementResult {
        var result = PlacementResult()
        var jobDenials: [Denial] = []
        if !mayPlace(job) {
            jobDenials.append(Denial(.placementNotAuthorized, "principal \(job.principal) may not place jobs (Cedar)"))
        }
        guard config.status.isActive else {
            finish(&result, nodes: nodes, jobDenials: jobDenials)
            return result
        }

        var datasets: [DatasetAttributes] = []
        for id in job.datasets {
            do throws(Denial) {
                if let d = try resolve(id) { datasets.append(d) } else {
                    jobDenials.append(Denial(.dataUnknownDataset, "dataset \(id) is not in the entity store"))
                }
            } catch { jobDenials.append(error) }
        }

        // Job-level guardrails: the same wherever the job would run.
        let request = GuardrailRequest(operation: .use, region: nil, purpose: job.purpose, study: job.study,
                                       principalStudies: nil, now: now)
        for d in datasets {
            switch ConsentCheck.check(d, purpose: job.purpose, config: config, consent: consent, now: now) {
            case .success(let o): if let o, !result.obligations.contains(o) { result.obligations.append(o) }
            case .failure(let den): jobDenials.append(den)
            }
            if let den = IsolationCheck.check(d, requestStudy: request.study, principalStudies: nil) { jobDenials.append(den) }
            jobDenials += RetentionCheck.check(d, operation: .use, config: config,
                                               holds: consent.holdMatters(dataset: d.id), now: now).denials
        }
        let labels = config.compute?.labels ?? NodeLabelKeys()
        if job.gxp { if let den = imageDenial(job, config: config) { jobDenials.append(den) } }
        if !jobDenials.isEmpty {
            result.obligations = []
            finish(&result, nodes: nodes, jobDenials: jobDenials)
            return result
        }

        // Per-region verdicts, merged over the datasets the residency rule governs.
        let governed = datasets.filter { ResidencyCheck.governs($0, config: config) }
        var regionVerdicts: [RegionVerdict] = []
        let regionIndex = config.regions?.regionIndex ?? [:]
        if !governed.isEmpty, let regions = config.regions {
            regionVerdicts.reserveCapacity(regions.regionOrder.count)
            for name in regions.regionOrder {
                let reg = regions.regions[name]!
                var v = RegionVerdict()
                for d in governed {
                    switch ResidencyCheck.verdict(d, region: reg, config: config, now: now) {
                    case .unrestricted, .allowed(nil): break
                    case .allowed(let o?): v.obligations.append(o)
                    case .denied(let den): v.denials.append(den)
                    }
                }
                regionVerdicts.append(v)
            }
        }
        let missingRegion = governed.isEmpty ? [] : [Denial(.residencyLocationMissing,
            "the job touches EEA-resident personal data (\(governed.map(\.id).joined(separator: ", "))) and the node has no region")]
        let unknownRegion: (String) -> Denial = { Denial(.residencyUnknownLocation, "node region \"\($0)\" is not defined in guardrails/regions.json") }

        let qualified = config.compute?.gpuModels ?? [:]
        result.allowed.reserveCapacity(nodes.count)
        for node in nodes {
            var reasons: [Denial] = []
            var basis: [Obligation] = []
            if !governed.isEmpty {
                if let r = node.region {
                    if let i = regionIndex.scalarLookup(r) {
                        reasons = regionVerdicts[i].denials
                        basis = regionVerdicts[i].obligations
                    } else {
                        reasons.append(unknownRegion(r))
                    }
                } else {
                    reasons = missingRegion
                }
            }
            if let dedicated = node.labels.scalarLookup(labels.study) {
                if job.study.map({ !$0.scalarEquals(dedicated) }) ?? true {
                    reasons.append(Denial(.isolationStudyMismatch,
                        "node \(node.name) is dedicated to study \(dedicated), the job runs in \(job.study.map { "study \($0)" } ?? "no study")"))
                }
            }
            if job.gxp {
                let model = node.labels.scalarLookup(labels.gpuModel)
                let driver = node.labels.scalarLookup(labels.gpuDriver)
                if let m = model, let drivers = qualified.scalarLookup(m), let d = driver, drivers.containsScalar(d) {
                } else {
                    reasons.append(Denial(.computeUnqualifiedNode,
                        "GxP job on node \(node.name): GPU \(model ?? "(unlabelled)") with driver \(driver ?? "(unlabelled)") is not qualified in guardrails/compute.json"))
                }
            }
            if reasons.isEmpty {
                result.allowed.append(node.name)
                if !basis.isEmpty { result.nodeObligations.append((node.name, basis)) }
            } else {
                result.rejected.append((node.name, reasons))
            }
        }
        return result
    }

    struct RegionVerdict {
        var denials: [Denial] = []
        var obligations: [Obligation] = []
    }

    static func imageDenial(_ job: PlacementJob, config: GuardrailConfig) -> Denial? {
        guard let image = job.image else {
            return Denial(.computeUnqualifiedImage, "GxP job \(job.id) names no image")
        }
        guard let at = image.utf8.lastIndex(of: UInt8(ascii: "@")) else {
            return Denial(.computeUnqualifiedImage, "GxP job \(job.id): image \(image) is not pinned by digest (name@sha256:...)")
        }
        let digest = String(image[image.utf8.index(after: at)...])
        if config.compute?.imageDigests.containsScalar(digest) ?? false { return nil }
        return Denial(.computeUnqualifiedImage, "GxP job \(job.id): image digest \(digest) is not qualified in guardrails/compute.json")
    }

    static func finish(_ result: inout PlacementResult, nodes: [PlacementNode], jobDenials: [Denial]) {
        if jobDenials.isEmpty {
            result.allowed = nodes.map(\.name)
        } else {
            result.rejected = nodes.map { ($0.name, jobDenials) }
        }
    }
}
