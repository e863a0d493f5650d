/// A single compiled expression, for tools and tests that evaluate outside a policy.
public struct CompiledExpression: Sendable {
    let node: IR

    public init(_ expr: Expr) throws(ParseError) { node = try Compiler.compile(expr) }

    public init(parsing text: String, file: String = "<expression>") throws(ParseError) {
        try self.init(CedarParser.parseExpression(text, file: file))
    }

    public func evaluate(request: Request, entities: EntityStore) throws(EvalError) -> Value {
        try Evaluator(request: request, entities: entities).eval(node)
    }
}
