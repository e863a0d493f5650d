/// Policy statements: annotations, effect, the `(principal, action, resource)` scope and the
/// `when`/`unless` conditions.
extension Parser {
    mutating func policies() throws(ParseError) -> [PolicyAST] {
        var result: [PolicyAST] = []
        while tok.kind != .eof {
            result.append(try policy())
        }
        return result
    }

    mutating func policy() throws(ParseError) -> PolicyAST {
        let start = location(tok)
        var annotations: [Annotation] = []
        var keys = Set<String>()
        while tok.kind == .at {
            let at = tok
            try advance()
            guard tok.kind == .ident else { throw expected("an annotation name after '@'") }
            let key = tok.text
            try advance()
            var value = ""
            if tok.kind == .lparen {
                try advance()
                value = try stringValue()
                try expect(.rparen, "')'")
            }
            guard keys.insert(key).inserted else {
                throw error("duplicate annotation @\(key) on one policy", redacted: "duplicate annotation on one policy", at: at)
            }
            annotations.append(Annotation(key: key, value: value, location: location(at)))
        }

        let effect: Effect
        switch tok.kind == .ident ? tok.text : "" {
        case "permit": effect = .permit
        case "forbid": effect = .forbid
        default: throw expected(annotations.isEmpty ? "'permit', 'forbid' or '@'" : "'permit', 'forbid' or another annotation")
        }
        try advance()
        try expect(.lparen, "'('")
        let principal = try scopeConstraint(variable: "principal", slot: .principal)
        try scopeSeparator()
        let action = try actionConstraint()
        try scopeSeparator()
        let resource = try scopeConstraint(variable: "resource", slot: .resource)
        if tok.kind == .comma { try advance() }
        guard tok.kind == .rparen else {
            if tok.kind == .ident && CedarNames.variables[tok.text] != nil {
                throw error("the scope has only principal, action and resource; move '\(tok.text)' into a condition", at: tok)
            }
            throw expected("')' to close the scope")
        }
        try advance()

        var conditions: [Condition] = []
        while tok.kind == .ident {
            let kind: Condition.Kind
            switch tok.text {
            case "when": kind = .when
            case "unless": kind = .unless
            default: throw expected("'when', 'unless' or ';'")
            }
            try advance()
            try expect(.lbrace, "'{'")
            if tok.kind == .rbrace {
                throw error("a '\(kind.rawValue)' condition cannot be empty", at: tok)
            }
            let body = try expression()
            try expect(.rbrace, "'}'")
            conditions.append(Condition(kind: kind, body: body.expr))
        }
        guard tok.kind == .semicolon else {
            throw expected(conditions.isEmpty ? "'when', 'unless' or ';'" : "'when', 'unless' or ';' after the condition")
        }
        try advance()
        return PolicyAST(annotations: annotations, effect: effect, principal: principal, action: action,
                         resource: resource, conditions: conditions, location: start)
    }

    private mutating func scopeSeparator() throws(ParseError) {
        guard tok.kind == .comma else {
            if tok.kind == .rparen {
                throw error("the scope must list principal, action and resource, in that order", at: tok)
            }
            throw expected("','")
        }
        try advance()
    }

    private mutating func scopeVariable(_ name: String) throws(ParseError) {
        guard isWord(name) else {
            if tok.kind == .ident && CedarNames.variables[tok.text] != nil {
                throw error("found '\(tok.text)' where '\(name)' must come: the scope lists principal, action, resource in that order", at: tok)
            }
            throw expected("'\(name)'")
        }
        try advance()
        if tok.kind == .colon {
            throw error("type constraints with ':' are not supported; write '\(name) is Type'", at: tok)
        }
    }

    private func invalidScopeOperator(_ variable: String) -> ParseError {
        switch tok.kind {
        case .neq, .lt, .le, .gt, .ge:
            return error("only '==', 'in' and 'is' may constrain '\(variable)' in the scope", at: tok)
        default:
            return expected("'==', 'in', 'is', ',' or ')' after '\(variable)'")
        }
    }

    /// `principal` / `resource` with an optional constraint.
    private mutating func scopeConstraint(variable: String, slot: SlotID) throws(ParseError) -> ScopeConstraint {
        try scopeVariable(variable)
        if tok.kind == .comma || tok.kind == .rparen { return .any }
        if tok.kind == .eq {
            try advance()
            return .eq(try scopeTarget(slot: slot))
        }
        if isWord("in") {
            try advance()
            return .in(try scopeTarget(slot: slot))
        }
        if isWord("is") {
            try advance()
            let type = try entityTypeName()
            if isWord("in") {
                try advance()
                return .isIn(type, try scopeTarget(slot: slot))
            }
            if tok.kind == .eq {
                throw error("'is' cannot be combined with '==' in the scope; use 'is ... in' or '==' alone", at: tok)
            }
            return .is(type)
        }
        throw invalidScopeOperator(variable)
    }

    /// Opening parentheses around a scope operand; returns how many must be closed.
    private mutating func openParens() throws(ParseError) -> Int {
        var n = 0
        while tok.kind == .lparen { n += 1; try advance() }
        return n
    }

    private mutating func closeParens(_ n: Int) throws(ParseError) {
        for _ in 0..<n { try expect(.rparen, "')'") }
    }

    /// An entity literal or the matching slot, possibly parenthesised.
    private mutating func scopeTarget(slot: SlotID) throws(ParseError) -> EntityOrSlot {
        let parens = try openParens()
        let target: EntityOrSlot
        if tok.kind == .slot {
            guard "?" + tok.text == slot.rawValue else {
                throw error("expected an entity or \(slot.rawValue) here but found '?\(tok.text)'",
                            redacted: "expected an entity or \(slot.rawValue) here but found another template slot", at: tok)
            }
            try advance()
            target = .slot(slot)
        } else if tok.kind == .ident {
            target = .entity(try entityLiteral())
        } else {
            throw expected("an entity such as Type::\"id\" or \(slot.rawValue)")
        }
        try closeParens(parens)
        return target
    }

    private mutating func actionEntity() throws(ParseError) -> EntityUID {
        let parens = try openParens()
        if tok.kind == .slot {
            throw error("template slots cannot constrain the action", at: tok)
        }
        let t = tok
        let uid = try entityLiteral()
        guard uid.type.isAction else {
            throw error("the action scope needs an entity of type Action (or Namespace::Action), not \(uid)",
                        redacted: "the action scope needs an entity of type Action (or Namespace::Action)", at: t)
        }
        try closeParens(parens)
        return uid
    }

    private mutating func actionConstraint() throws(ParseError) -> ActionConstraint {
        try scopeVariable("action")
        if tok.kind == .comma || tok.kind == .rparen { return .any }
        if tok.kind == .eq {
            try advance()
            if tok.kind == .lbracket {
                throw error("'action ==' needs a single action; use 'action in [...]' for a list", at: tok)
            }
            return .eq(try actionEntity())
        }
        if isWord("in") {
            try advance()
            let parens = try openParens()
            let constraint: ActionConstraint
            if tok.kind == .lbracket {
                try advance()
                constraint = .inSet(try list(until: .rbracket, "']'") { (p: inout Parser) throws(ParseError) in try p.actionEntity() })
            } else {
                constraint = .in(try actionEntity())
            }
            try closeParens(parens)
            return constraint
        }
        if isWord("is") {
            throw error("'is' cannot be used in the action scope", at: tok)
        }
        throw invalidScopeOperator("action")
    }
}
