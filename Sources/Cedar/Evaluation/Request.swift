/// An authorization request: who, doing what, to what, in which context.
public struct Request: Sendable, Hashable {
    public var principal: EntityUID
    public var action: EntityUID
    public var resource: EntityUID
    public var context: CedarRecord

    public init(principal: EntityUID, action: EntityUID, resource: EntityUID, context: CedarRecord = CedarRecord()) {
        self.principal = principal; self.action = action; self.resource = resource; self.context = context
    }
}
