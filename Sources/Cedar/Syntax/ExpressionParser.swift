/// Cedar expressions, loosest binding first:
/// `if-then-else` < `||` < `&&` < one relation (`== != < <= > >= in has like is`)
/// < `+ -` < `*` < unary (`!` or `-`, at most 4) < member access < primary.
/// `if` may only start a whole expression (inside brackets, arguments, or after `then`/`else`).
extension Parser {
    mutating func expression() throws(ParseError) -> ParsedExpr {
        nesting += 1
        defer { nesting -= 1 }
        guard nesting <= Parser.maxNesting else {
            throw error("expression is nested too deeply (more than \(Parser.maxNesting) levels); split it up", at: tok)
        }
        guard isWord("if") else { return try or() }
        let start = tok
        try advance()
        let cond = try expression()
        try expectWord("then")
        let then = try expression()
        try expectWord("else")
        let els = try expression()
        return try node(.ifThenElse(cond.expr, then.expr, els.expr), at: location(start), cond, then, els)
    }

    private mutating func or() throws(ParseError) -> ParsedExpr {
        var l = try and()
        while tok.kind == .or {
            try advance()
            let r = try and()
            l = try node(.or(l.expr, r.expr), at: l.expr.location, l, r)
        }
        return l
    }

    private mutating func and() throws(ParseError) -> ParsedExpr {
        var l = try relation()
        while tok.kind == .and {
            try advance()
            let r = try relation()
            l = try node(.and(l.expr, r.expr), at: l.expr.location, l, r)
        }
        return l
    }

    private var relationalOperator: BinaryOp? {
        switch tok.kind {
        case .eq: .eq
        case .neq: .neq
        case .lt: .lt
        case .le: .le
        case .gt: .gt
        case .ge: .ge
        case .ident where tok.text == "in": .in
        default: nil
        }
    }

    private var startsRelation: Bool {
        relationalOperator != nil || isWord("has") || isWord("like") || isWord("is") || tok.kind == .assign
    }

    private mutating func relation() throws(ParseError) -> ParsedExpr {
        let l = try add()
        let loc = l.expr.location
        let result: ParsedExpr
        if let op = relationalOperator {
            try advance()
            let r = try add()
            result = try node(.binary(op, l.expr, r.expr), at: loc, l, r)
        } else if isWord("has") {
            try advance()
            result = try hasChain(l)
        } else if isWord("like") {
            try advance()
            result = try node(.like(l.expr, try patternValue()), at: loc, l)
        } else if isWord("is") {
            try advance()
            let type = try entityTypeName()
            if isWord("in") {
                try advance()
                let r = try add()
                result = try node(.isTypeIn(l.expr, type, r.expr), at: loc, l, r)
            } else {
                result = try node(.isType(l.expr, type), at: loc, l)
            }
        } else if tok.kind == .assign {
            throw error("'=' is not an operator in Cedar; use '==' to compare", at: tok)
        } else {
            return l
        }
        if startsRelation {
            throw error("relational operators (==, <, in, has, like, is, ...) cannot be chained; add parentheses", at: tok)
        }
        return result
    }

    /// `e has a`, `e has "a"`, and `e has a.b.c`, which means `e has a && e.a has b && e.a.b has c`.
    private mutating func hasChain(_ target: ParsedExpr) throws(ParseError) -> ParsedExpr {
        let loc = target.expr.location
        if tok.kind == .string {
            return try node(.hasAttr(target.expr, try stringValue()), at: loc, target)
        }
        guard tok.kind == .ident else { throw expected("an attribute name or string after 'has'") }
        var attrs = [try attributeIdentifier()]
        while tok.kind == .dot {
            try advance()
            attrs.append(try attributeIdentifier())
        }
        var result = try node(.hasAttr(target.expr, attrs[0]), at: loc, target)
        var path = target
        for k in 1..<attrs.count {
            path = try node(.getAttr(path.expr, attrs[k - 1]), at: loc, path)
            let test = try node(.hasAttr(path.expr, attrs[k]), at: loc, path)
            result = try node(.and(result.expr, test.expr), at: loc, result, test)
        }
        return result
    }

    private mutating func add() throws(ParseError) -> ParsedExpr {
        var l = try mul()
        while tok.kind == .plus || tok.kind == .minus {
            let op: BinaryOp = tok.kind == .plus ? .add : .sub
            try advance()
            let r = try mul()
            l = try node(.binary(op, l.expr, r.expr), at: l.expr.location, l, r)
        }
        return l
    }

    private mutating func mul() throws(ParseError) -> ParsedExpr {
        var l = try unary()
        while tok.kind == .star {
            try advance()
            let r = try unary()
            l = try node(.binary(.mul, l.expr, r.expr), at: l.expr.location, l, r)
        }
        return l
    }

    private mutating func unary() throws(ParseError) -> ParsedExpr {
        let op = tok.kind
        guard op == .bang || op == .minus else { return try member() }
        let start = tok
        var count = 0
        while tok.kind == op {
            count += 1
            try advance()
        }
        let shown = op == .bang ? "!" : "-"
        guard count <= 4 else {
            throw error("too many '\(shown)' in a row (at most 4)", at: start)
        }
        if tok.kind == .bang || tok.kind == .minus {
            throw error("'!' and '-' cannot be combined without parentheses", at: tok)
        }
        let loc = location(start)
        var inner: ParsedExpr
        if op == .minus && tok.kind == .int && peek().kind != .dot && peek().kind != .lbracket {
            // Cedar folds the innermost `-` into an integer literal, so the most negative
            // 64-bit value can be written.
            let magnitude = try integerMagnitude()
            inner = try node(.long(magnitude == 1 << 63 ? Int64.min : -Int64(magnitude)), at: loc, depth: 1)
            count -= 1
        } else {
            inner = try member()
        }
        for _ in 0..<count {
            inner = try node(op == .bang ? .not(inner.expr) : .negate(inner.expr), at: loc, inner)
        }
        return inner
    }

    /// The integer literal at the cursor, at most 2^63 (only negation makes that one valid).
    private mutating func integerMagnitude() throws(ParseError) -> UInt64 {
        let t = tok
        var value: UInt64 = 0
        for b in bytes[t.start..<t.end] {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1 && !o2 && s <= 1 << 63 else {
                throw error("integer literal \(describe(t)) is out of the 64-bit range",
                            redacted: "integer literal is out of the 64-bit range", at: t)
            }
            value = s
        }
        try advance()
        return value
    }

    private mutating func member() throws(ParseError) -> ParsedExpr {
        var e = try primary()
        let loc = e.expr.location
        while true {
            if tok.kind == .dot {
                try advance()
                guard tok.kind == .ident else { throw expected("an attribute or method name after '.'") }
                if peek().kind == .lparen {
                    e = try methodCall(on: e)
                } else {
                    e = try node(.getAttr(e.expr, try attributeIdentifier()), at: loc, e)
                }
            } else if tok.kind == .lbracket {
                try advance()
                guard tok.kind == .string else { throw expected("a string literal attribute name in '[...]'") }
                let name = try stringValue()
                try expect(.rbracket, "']'")
                e = try node(.getAttr(e.expr, name), at: loc, e)
            } else {
                return e
            }
        }
    }

    private mutating func methodCall(on receiver: ParsedExpr) throws(ParseError) -> ParsedExpr {
        let nameTok = tok
        try checkIdentifier(nameTok, as: "a method name")
        let name = nameTok.text
        try advance()
        try advance()  // '('
        let args = try arguments()
        let loc = receiver.expr.location
        if let builtin = CedarNames.builtinMethods[name] {
            guard args.count == builtin.arity else {
                let plural = builtin.arity == 1 ? "argument" : "arguments"
                throw error("'\(name)' takes exactly \(builtin.arity) \(plural) but was given \(args.count)", at: nameTok)
            }
            if let op = builtin.op {
                return try node(.binary(op, receiver.expr, args[0].expr), at: loc, receiver, args[0])
            }
            return try node(.isEmpty(receiver.expr), at: loc, receiver)
        }
        if CedarNames.extensionMethods.contains(name) {
            return try call(name, [receiver] + args, at: loc)
        }
        if CedarNames.functions.contains(name) {
            throw error("'\(name)' is a function, not a method: write \(name)(...)", at: nameTok)
        }
        throw error("'\(name)' is not a Cedar method", redacted: "an identifier that is not a Cedar method", at: nameTok)
    }

    /// Arguments after an opening `(`, through the closing `)`.
    private mutating func arguments() throws(ParseError) -> [ParsedExpr] {
        try list(until: .rparen, "')'") { (p: inout Parser) throws(ParseError) in try p.expression() }
    }

    private func call(_ name: String, _ args: [ParsedExpr], at loc: SourceLocation) throws(ParseError) -> ParsedExpr {
        let depth = args.reduce(0) { max($0, $1.depth) }
        return try node(.call(name, args.map(\.expr)), at: loc, depth: depth + 1)
    }

    private mutating func primary() throws(ParseError) -> ParsedExpr {
        let t = tok
        let loc = location(t)
        switch t.kind {
        case .int:
            let magnitude = try integerMagnitude()
            guard magnitude <= UInt64(Int64.max) else {
                throw error("integer literal \(describe(t)) is out of the 64-bit range",
                            redacted: "integer literal is out of the 64-bit range", at: t)
            }
            return try node(.long(Int64(magnitude)), at: loc, depth: 1)
        case .string:
            return try node(.string(try stringValue()), at: loc, depth: 1)
        case .slot:
            guard SlotID(rawValue: "?" + t.text) != nil else {
                throw error("'?\(t.text)' is not a template slot (use ?principal or ?resource)",
                            redacted: "not a template slot (use ?principal or ?resource)", at: t)
            }
            throw error("template slot '?\(t.text)' may only appear in the policy scope",
                        redacted: "a template slot may only appear in the policy scope", at: t)
        case .lparen:
            try advance()
            let inner = try expression()
            try expect(.rparen, "')'")
            return inner
        case .lbracket:
            try advance()
            let items = try list(until: .rbracket, "']'") { (p: inout Parser) throws(ParseError) in try p.expression() }
            let depth = items.reduce(0) { max($0, $1.depth) }
            return try node(.set(items.map(\.expr)), at: loc, depth: depth + 1)
        case .lbrace:
            return try record()
        case .ident:
            return try namedPrimary()
        default:
            throw expected("an expression")
        }
    }

    private mutating func record() throws(ParseError) -> ParsedExpr {
        let loc = location(tok)
        try advance()
        var seen = Set<ScalarString>()
        var depth = 0
        let entries = try list(until: .rbrace, "'}'") { (p: inout Parser) throws(ParseError) -> RecordEntry in
            let keyTok = p.tok
            let key: String
            switch keyTok.kind {
            case .string: key = try p.stringValue()
            case .ident: key = try p.attributeIdentifier()
            default: throw p.expected("a record key (identifier or string)")
            }
            guard seen.insert(ScalarString(key)).inserted else {
                throw p.error("duplicate key \(cedarQuoted(key)) in record literal",
                              redacted: "duplicate key in record literal", at: keyTok)
            }
            try p.expect(.colon, "':'")
            let value = try p.expression()
            depth = max(depth, value.depth)
            return RecordEntry(key: key, value: value.expr)
        }
        return try node(.record(entries), at: loc, depth: depth + 1)
    }

    /// Literals `true`/`false`, variables, entity literals and extension function calls.
    private mutating func namedPrimary() throws(ParseError) -> ParsedExpr {
        let t = tok
        let loc = location(t)
        switch t.text {
        case "true", "false":
            try advance()
            return try node(.bool(t.text == "true"), at: loc, depth: 1)
        case "if":
            throw error("an if-then-else here must be wrapped in parentheses", at: t)
        default:
            break
        }
        let parts = try pathComponents()
        if tok.kind == .colonColon {
            return try node(.entity(try entityAfterPath(parts)), at: loc, depth: 1)
        }
        let name = parts.map(\.text).joined(separator: "::")
        if tok.kind == .lparen {
            guard parts.count == 1, CedarNames.functions.contains(name) else {
                if CedarNames.extensionMethods.contains(name) || CedarNames.builtinMethods[name] != nil {
                    throw error("'\(name)' is a method, not a function: write receiver.\(name)(...)", at: t)
                }
                if CedarNames.variables[name] != nil {
                    throw error("'\(name)' is a variable and cannot be called", at: t)
                }
                throw error("'\(name)' is not a Cedar function (expected ip, decimal, datetime or duration)",
                            redacted: "an identifier that is not a Cedar function (expected ip, decimal, datetime or duration)", at: t)
            }
            try advance()
            return try call(name, try arguments(), at: loc)
        }
        if parts.count == 1, let v = CedarNames.variables[name] {
            return try node(.variable(v), at: loc, depth: 1)
        }
        for p in parts { try checkIdentifier(p, as: "a variable") }
        throw error("unknown variable '\(name)' (expected principal, action, resource or context)",
                    redacted: "unknown variable (expected principal, action, resource or context)", at: t)
    }
}
