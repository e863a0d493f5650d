/// A `place` question in typed form, for an in-process caller (the scheduler extender of the
/// HTTP front door) that has the job and the nodes as values already: the same question as the
/// `place` method's params, without writing them as JSON for the daemon to read back.
public struct PlacementQuery: Sendable {
    /// One element of `place`'s `nodes`: a name resolved through the node inventory, or a node
    /// described by the caller.
    public enum Node: Sendable {
        case name(String)
        case object(PlacementNode)

        public var name: String {
            switch self {
            case .name(let n): n
            case .object(let o): o.name
            }
        }
    }

    public var job: PlacementJob
    public var nodes: [Node]
    /// Also rank the allowed nodes (`PlacementResult.scores`).
    public var scores: Bool

    public init(job: PlacementJob, nodes: [Node], scores: Bool = false) {
        self.job = job; self.nodes = nodes; self.scores = scores
    }
}

/// `place`'s answer in typed form: the placement as decided (after the per-node Cedar checks)
/// and the id of its audit entry, which is durable when the answer is handed back.
public struct PlacementAnswer: Sendable {
    public var result: PlacementResult
    public var decisionID: String
    /// `result.rejected` is two runs, each in the order the nodes were asked about: the nodes
    /// the guardrails rejected, then, from this index, those the per-node Cedar checks did. A
    /// caller pairing rejections with the nodes it asked about can walk both runs at once.
    public var laterRejections: Int

    public init(result: PlacementResult, decisionID: String, laterRejections: Int) {
        self.result = result; self.decisionID = decisionID; self.laterRejections = laterRejections
    }
}
