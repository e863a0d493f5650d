import Cedar

/// A job asking where it may run (the `place` params' `job`).
public struct PlacementJob: Sendable, Hashable {
    public var id: String
    public var principal: String
    public var study: String?
    public var purpose: String?
    public var datasets: [String]
    public var gxp: Bool
    /// Every container image the job runs (a pod's init containers and containers); a GxP
    /// job must pin each by digest (`name@sha256:...`) and every digest must be qualified. A
    /// qualified first container must not carry an unqualified sidecar onto a GxP node.
    public var images: [String]
    /// The Kubernetes pod the job is, when a scheduler extender asks: not read by any check,
    /// only recorded with the decision, so the audit trail names the workload that ran.
    public var pod: Pod?

    /// `{namespace, name, uid}` of a pod.
    public struct Pod: Sendable, Hashable {
        public var namespace: String
        public var name: String
        public var uid: String
        public init(namespace: String, name: String, uid: String) { self.namespace = namespace; self.name = name; self.uid = uid }
    }

    /// Datasets one job may name, at most: each is checked against every node.
    public static let maxDatasets = 1024

    /// Why `ids` cannot be a job's datasets (too many, or one named twice: its reasons would be
    /// repeated for nothing), with the position that shows it; nil when they can.
    public static func datasetsProblem(_ ids: [String]) -> (index: Int, message: String)? {
        if ids.count > maxDatasets { return (maxDatasets, "\(ids.count) datasets, over the limit of \(maxDatasets) for one job") }
        var seen = Set<[UInt8]>()
        seen.reserveCapacity(ids.count)
        for (i, id) in ids.enumerated() where !seen.insert(Array(id.utf8)).inserted {
            return (i, "dataset \(id) is named twice")
        }
        return nil
    }

    public init(id: String, principal: String, study: String? = nil, purpose: String? = nil,
                datasets: [String], gxp: Bool = false, image: String? = nil, images: [String] = [], pod: Pod? = nil) {
        self.id = id; self.principal = principal; self.study = study; self.purpose = purpose
        self.datasets = datasets; self.gxp = gxp; self.images = (image.map { [$0] } ?? []) + images; self.pod = pod
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
    /// Index into compute.json `dedicated` of the study whose dedicated nodes include this one;
    /// -1 for none, -2 when the sets of several studies include it (see `dedicatedConflict`).
    let dedication: Int
    /// The studies whose sets include the node, when there are several (for the message).
    let dedicatedConflict: String?
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
        let dedicated: [DedicatedNodes]

        public init(_ config: GuardrailConfig) {
            regionIndex = config.regions?.regionIndex ?? [:]
            labels = config.compute?.labels ?? NodeLabelKeys()
            qualified = config.compute?.gpuModels ?? [:]
            dedicated = config.compute?.dedicated ?? []
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
        var dedication = -1
        var conflict: String? = nil
        for (k, d) in view.dedicated.enumerated() where d.contains(name: node.name, labels: node.labels) {
            if dedication == -1 { dedication = k; continue }
            conflict = (conflict ?? view.dedicated[dedication].study) + ", " + d.study
            dedication = -2
        }
        self.dedication = dedication
        dedicatedConflict = conflict
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

    /// With `scores` asked for: one per allowed node, in the order of `allowed`, from 0 to 10
    /// (see `Placement.score`); empty otherwise.
    public var scores: [Int] = []

    public init() {}

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
                             resolve: Resolver, mayPlace: (PlacementJob) -> Bool, scores: Bool = false) -> PlacementResult {
        var candidates: [PlacementCandidate] = []
        candidates.reserveCapacity(nodes.count)
        for n in PreparedNode.View(config).prepare(nodes, gpu: job.gxp) { candidates.append(.node(n)) }
        return place(job: job, candidates: candidates, config: config, consent: consent, now: now,
                     principalStudies: principalStudies, resolve: resolve, mayPlace: mayPlace, scores: scores)
    }

    /// The same over candidates whose region and labels were already resolved against `config`
    /// (see `PreparedNode`), and names the caller could not resolve (`.unknown`), which are
    /// rejected with `placement.unknown_node` (plus any job-level reasons).
    ///
    /// Cost: the job-level checks and one verdict per distinct region are computed once; each
    /// node is then an array index, a string comparison for dedicated nodes, and a flag for GxP.
    ///
    /// `scores`: also rank the allowed nodes for a scheduler's preference (`PlacementResult.scores`).
    public static func place(job: PlacementJob, candidates: [PlacementCandidate], config: GuardrailConfig,
                             consent: ConsentSnapshot, now: CedarDatetime, principalStudies: Set<String>?,
                             resolve: Resolver, mayPlace: (PlacementJob) -> Bool, scores: Bool = false) -> PlacementResult {
        var result = PlacementResult()
        var jobDenials: [Denial] = []
        if !mayPlace(job) {
            jobDenials.append(Denial(.placementNotAuthorized, "principal \(job.principal) may not place jobs (Cedar)"))
        }
        guard config.status.isActive else {
            finish(&result, candidates: candidates, jobDenials: jobDenials)
            if scores { result.scores = Array(repeating: 0, count: result.allowed.count) }
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
        // The data's own jurisdictions, per configured region, for the scores.
        var home: [Bool] = []
        if scores, let regions = config.regions {
            let resident = datasets.compactMap(\.residency)
            home = regions.regionOrder.map { r in resident.contains { $0.scalarEquals(regions.regions[r]!.jurisdiction) } }
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

        // A study confined to its dedicated nodes (compute.json `dedicated`): its position there.
        var confinedTo = -1
        if let study = job.study, let dedicated = config.compute?.dedicated {
            confinedTo = dedicated.firstIndex { $0.study.scalarEquals(study) } ?? -1
        }
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
            if node.dedication != -1 || confinedTo >= 0 {
                if let den = dedicationDenial(node, job: job, confinedTo: confinedTo, config: config) { reasons += den }
            }
            if job.gxp, !node.gpuQualified {
                reasons.append(Denial(.computeUnqualifiedNode,
                    "GxP job on node \(node.name): GPU \(node.gpuModel ?? "(unlabelled)") with driver \(node.gpuDriver ?? "(unlabelled)") is not qualified in guardrails/compute.json"))
            }
            if reasons.isEmpty {
                result.allowed.append(node.name)
                if !basis.isEmpty { result.nodeObligations.append((node.name, basis)) }
                if scores { result.scores.append(score(node, job: job, confinedTo: confinedTo, home: home)) }
            } else {
                result.rejected.append((node.name, bounded(reasons)))
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

    /// How much a scheduler should prefer an allowed node, 0 to 10 (the Kubernetes extender
    /// priority range): 10 for a node dedicated to the job's study (its study label, or its
    /// `dedicated` set), 5 for a node in a region of the jurisdiction where one of the job's
    /// datasets is resident (the data stays home), 0 otherwise.
    static func score(_ node: PreparedNode, job: PlacementJob, confinedTo: Int, home: [Bool]) -> Int {
        if let study = job.study {
            if confinedTo >= 0, node.dedication == confinedTo { return 10 }
            if let s = node.study, s.scalarEquals(study) { return 10 }
        }
        if node.region >= 0, node.region < home.count, home[node.region] { return 5 }
        return 0
    }

    /// A confined job off its study's nodes (`isolation.not_dedicated`), and a job on another
    /// study's dedicated node (`isolation.study_mismatch`); rare, so kept out of the node loop.
    static func dedicationDenial(_ node: PreparedNode, job: PlacementJob, confinedTo: Int, config: GuardrailConfig) -> [Denial]? {
        let dedicated = config.compute?.dedicated ?? []
        var out: [Denial] = []
        if confinedTo >= 0, node.dedication != confinedTo {
            let d = dedicated[confinedTo]
            out.append(Denial(.isolationNotDedicated,
                "study \(d.study) runs only on its dedicated nodes (guardrails/compute.json dedicated: \(d.selector)); node \(node.name) is not one of them"))
        }
        if node.dedication == -2 {
            out.append(Denial(.isolationStudyMismatch,
                "node \(node.name) is among the dedicated nodes of several studies (\(node.dedicatedConflict ?? "")) in guardrails/compute.json; it runs no job until it belongs to one"))
        } else if node.dedication >= 0 {
            let owner = dedicated[node.dedication].study
            // The study label naming the same study has said so already.
            let said = node.study.map { $0.scalarEquals(owner) } ?? false
            if !said, job.study.map({ !$0.scalarEquals(owner) }) ?? true {
                out.append(Denial(.isolationStudyMismatch,
                    "node \(node.name) is dedicated to study \(owner) (guardrails/compute.json dedicated), the job runs in \(job.study.map { "study \($0)" } ?? "no study")"))
            }
        }
        return out.isEmpty ? nil : out
    }

    struct RegionVerdict {
        var denials: [Denial] = []
        var obligations: [Obligation] = []
    }

    static func imageDenial(_ job: PlacementJob, config: GuardrailConfig) -> Denial? {
        guard !job.images.isEmpty else {
            return Denial(.computeUnqualifiedImage, "GxP job \(job.id) names no image")
        }
        for image in job.images {
            guard let at = image.utf8.lastIndex(of: UInt8(ascii: "@")) else {
                return Denial(.computeUnqualifiedImage, "GxP job \(job.id): image \(image) is not pinned by digest (name@sha256:...)")
            }
            let digest = String(image[image.utf8.index(after: at)...])
            guard config.compute?.imageDigests.containsScalar(digest) ?? false else {
                return Denial(.computeUnqualifiedImage, "GxP job \(job.id): image digest \(digest) is not qualified in guardrails/compute.json")
            }
        }
        return nil
    }

    static func finish(_ result: inout PlacementResult, candidates: [PlacementCandidate], jobDenials: [Denial]) {
        // Lists shared by every node, not a copy each: the job's reasons, and the same after
        // an unknown name's own.
        let shown = bounded(jobDenials)
        let afterUnknown = bounded(jobDenials, room: maxReasonsPerNode - 1)
        for c in candidates {
            switch c {
            case .node(let n):
                if jobDenials.isEmpty { result.allowed.append(n.name) } else { result.rejected.append((n.name, shown)) }
            case .unknown(let name):
                result.rejected.append((name, [unknownNode(name)] + afterUnknown))
            }
        }
    }

    /// Reasons listed for one rejected node, at most. A node's list grows with the job's
    /// datasets (a residency reason each, and the job's own reasons, which every node repeats),
    /// so without a bound a short request naming many datasets and many nodes would ask for an
    /// answer of nodes x datasets reasons: gigabytes from a few hundred kilobytes.
    public static let maxReasonsPerNode = 8

    /// `list` cut to `room` reasons: the last place then says how many more there were
    /// (`placement.more_reasons`), and which codes they carry.
    static func bounded(_ list: [Denial], room: Int = maxReasonsPerNode) -> [Denial] {
        guard list.count > room else { return list }
        var out = Array(list.prefix(room - 1))
        let omitted = list.dropFirst(room - 1)
        var codes: [String] = []
        for d in omitted where !codes.contains(d.code.rawValue) { codes.append(d.code.rawValue) }
        out.append(Denial(.placementMoreReasons, "and \(omitted.count) more reasons (\(codes.joined(separator: ", "))) not listed"))
        return out
    }
}
