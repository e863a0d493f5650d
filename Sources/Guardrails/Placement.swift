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

/// A node as `Placement` reads it under one guardrail configuration: its region as a position in
/// `regions.json`'s order, the study it is dedicated to, and whether its GPU is qualified for
/// GxP jobs. Resolving these is most of the per-node work of a placement, so the node inventory
/// keeps nodes prepared per configuration and a call over names only looks them up. A class, so
/// handing one from the inventory to a placement and into its candidate list is one reference.
public struct PreparedNode: Sendable {
    public let name: String
    /// Index into `regions.regionOrder`, or -1 when the node's region is absent or not configured.
    let region: Int
    /// The node's region when it is not configured (for the message), else nil. Strings are kept
    /// only where a message needs them: each one kept is reference counting on every copy.
    let unconfiguredRegion: String?
    /// The value of the study label (`custos.io/study`): the study the node is dedicated to.
    let study: String?
    /// The GPU model and driver labels name a qualified pair in compute.json.
    let gpuQualified: Bool
    /// The labels, for the message, when the GPU is not qualified.
    let gpuModel: String?
    let gpuDriver: String?

    /// What of a configuration preparing a node reads, taken out once per batch of nodes.
    public struct View: Sendable {
        let regionIndex: [String: Int]
        let labels: NodeLabelKeys
        let qualified: [String: Set<String>]

        public init(_ config: GuardrailConfig) {
            regionIndex = config.regions?.regionIndex ?? [:]
            labels = config.compute?.labels ?? NodeLabelKeys()
            qualified = config.compute?.gpuModels ?? [:]
        }

        /// The nodes prepared, in order. Prefer this to one `PreparedNode(_:_:gpu:)` per node from
        /// another module: inlined into this loop, the configuration's tables are read once
        /// rather than retained and released for every node (a quarter of the per-node cost).
        public func prepare(_ nodes: [PlacementNode], gpu: Bool = true) -> [PreparedNode] {
            var out: [PreparedNode] = []
            out.reserveCapacity(nodes.count)
            for n in nodes { out.append(PreparedNode(n, self, gpu: gpu)) }
            return out
        }
    }

    /// `gpu: false` skips the GPU labels (a job that is not GxP never reads them). Parameters
    /// are borrowed: an initialiser would otherwise take them +1, retaining every dictionary
    /// of `view` once per node.
    @inline(__always)
    public init(_ node: borrowing PlacementNode, _ view: borrowing View, gpu: Bool = true) {
        name = node.name
        if let given = node.region {
            let r = view.regionIndex.scalarLookup(given)
            region = r ?? -1
            unconfiguredRegion = r == nil ? given : nil
        } else {
            region = -1
            unconfiguredRegion = nil
        }
        study = node.labels.scalarLookup(view.labels.study)
        var qualified = false
        var model: String? = nil, driver: String? = nil
        if gpu {
            model = node.labels.scalarLookup(view.labels.gpuModel)
            driver = node.labels.scalarLookup(view.labels.gpuDriver)
            if let m = model, let d = driver, let drivers = view.qualified.scalarLookup(m) { qualified = drivers.containsScalar(d) }
        }
        gpuQualified = qualified
        gpuModel = qualified ? nil : model
        gpuDriver = qualified ? nil : driver
    }
}

/// One element of a placement's candidate list: a node, or a name nothing is known about.
public enum PlacementCandidate: Sendable {
    case node(PreparedNode)
    case unknown(String)
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
    /// `principalStudies` are the studies the job's principal is a member of, as the folder
    /// says (nil: it has no `studies` attribute, so it is a member of none). A job that names
    /// a study must be run by a member of it: naming the data's study is not membership.
    public static func place(job: PlacementJob, nodes: [PlacementNode], config: GuardrailConfig,
                             consent: ConsentSnapshot, now: CedarDatetime, principalStudies: Set<String>?,
                             resolve: Resolver, mayPlace: (PlacementJob) -> Bool) -> PlacementResult {
        var candidates: [PlacementCandidate] = []
        candidates.reserveCapacity(nodes.count)
        for n in PreparedNode.View(config).prepare(nodes, gpu: job.gxp) { candidates.append(.node(n)) }
        return place(job: job, candidates: candidates, config: config, consent: consent, now: now,
                     principalStudies: principalStudies, resolve: resolve, mayPlace: mayPlace)
    }

    /// The same over candidates whose region and labels were already resolved against `config`
    /// (see `PreparedNode`), and names the caller could not resolve (`.unknown`), which are
    /// rejected with `placement.unknown_node` (plus any job-level reasons).
    ///
    /// Cost: the job-level checks and one verdict per distinct region are computed once; each
    /// node is then an array index, a string comparison for dedicated nodes, and a flag for GxP.
    public static func place(job: PlacementJob, candidates: [PlacementCandidate], config: GuardrailConfig,
                             consent: ConsentSnapshot, now: CedarDatetime, principalStudies: Set<String>?,
                             resolve: Resolver, mayPlace: (PlacementJob) -> Bool) -> PlacementResult {
        var result = PlacementResult()
        var jobDenials: [Denial] = []
        if !mayPlace(job) {
            jobDenials.append(Denial(.placementNotAuthorized, "principal \(job.principal) may not place jobs (Cedar)"))
        }
        guard config.status.isActive else {
            finish(&result, candidates: candidates, jobDenials: jobDenials)
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

        // Job-level guardrails: the same wherever the job would run. A job must name its study
        // (the environment is never inferred from the principal's memberships, as `decide`
        // may), and its principal must be a member of it.
        let members: Set<String>? = job.study == nil ? nil : (principalStudies ?? [])
        let request = GuardrailRequest(operation: .use, region: nil, purpose: job.purpose, study: job.study,
                                       principalStudies: members, now: now)
        for d in datasets {
            switch ConsentCheck.check(d, purpose: job.purpose, config: config, consent: consent, now: now) {
            case .success(let o): if let o, !result.obligations.contains(o) { result.obligations.append(o) }
            case .failure(let den): jobDenials.append(den)
            }
            jobDenials += IsolationCheck.check(d, requestStudy: request.study, principalStudies: request.principalStudies)
            jobDenials += RetentionCheck.check(d, operation: .use, config: config,
                                               holds: consent.holdMatters(dataset: d.id, at: now), now: now).denials
        }
        if job.gxp { if let den = imageDenial(job, config: config) { jobDenials.append(den) } }
        if !jobDenials.isEmpty {
            result.obligations = []
            finish(&result, candidates: candidates, jobDenials: jobDenials)
            return result
        }

        // Per-region verdicts, merged over the datasets the residency rule governs.
        let governed = datasets.filter { ResidencyCheck.governs($0, config: config) }
        var regionVerdicts: [RegionVerdict] = []
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

        result.allowed.reserveCapacity(candidates.count)
        for candidate in candidates {
            guard case .node(let node) = candidate else {
                if case .unknown(let name) = candidate { result.rejected.append((name, [unknownNode(name)])) }
                continue
            }
            var reasons: [Denial] = []
            var basis: [Obligation] = []
            if !governed.isEmpty {
                if node.region >= 0 {
                    reasons = regionVerdicts[node.region].denials
                    basis = regionVerdicts[node.region].obligations
                } else if let r = node.unconfiguredRegion {
                    reasons.append(unknownRegion(r))
                } else {
                    reasons = missingRegion
                }
            }
            if let dedicated = node.study {
                if job.study.map({ !$0.scalarEquals(dedicated) }) ?? true {
                    reasons.append(Denial(.isolationStudyMismatch,
                        "node \(node.name) is dedicated to study \(dedicated), the job runs in \(job.study.map { "study \($0)" } ?? "no study")"))
                }
            }
            if job.gxp, !node.gpuQualified {
                reasons.append(Denial(.computeUnqualifiedNode,
                    "GxP job on node \(node.name): GPU \(node.gpuModel ?? "(unlabelled)") with driver \(node.gpuDriver ?? "(unlabelled)") is not qualified in guardrails/compute.json"))
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

    /// Why a name the caller sent is not placed on: the daemon knows nothing about it (its
    /// region, its labels), so it cannot show the placement lawful.
    static func unknownNode(_ name: String) -> Denial {
        Denial(.placementUnknownNode,
               "node \(name) is not in the node inventory; send it with nodes.sync, or as a node object {name, region, labels}")
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

    static func finish(_ result: inout PlacementResult, candidates: [PlacementCandidate], jobDenials: [Denial]) {
        for c in candidates {
            switch c {
            case .node(let n):
                if jobDenials.isEmpty { result.allowed.append(n.name) } else { result.rejected.append((n.name, jobDenials)) }
            case .unknown(let name):
                result.rejected.append((name, [unknownNode(name)] + jobDenials))
            }
        }
    }
}
