/// The human-readable schema syntax (`.cedarschema`), as Cedar 4.x's grammar has it:
///
///     namespace Clinic {
///       type Address = { city: String, zip?: String };
///       entity Team, Site;
///       entity User in [Team] { name: String, home?: Address } tags String;
///       entity Color enum ["red", "green"];
///       action read, list in [Action::"any"] appliesTo {
///         principal: [User], resource: Dataset, context: { mfa: Bool }
///       };
///     }
///
/// Annotations (`@doc("...")`) are accepted and not kept. Errors carry file:line:col.
extension Parser {
    mutating func schemaNamespaces() throws(ParseError) -> [RawNamespace] {
        var result: [RawNamespace] = []
        var outside: RawNamespace? = nil
        while tok.kind != .eof {
            let start = location(tok)
            try schemaAnnotations()
            if isWord("namespace") {
                try advance()
                let name = try schemaPath()
                try expect(.lbrace, "'{'")
                var ns = RawNamespace(name: name, site: SchemaSite(start))
                while tok.kind != .rbrace {
                    guard tok.kind != .eof else { throw expected("a declaration or '}'") }
                    try schemaAnnotations()
                    try schemaDeclaration(into: &ns)
                }
                try advance()
                result.append(ns)
            } else {
                var ns = outside ?? RawNamespace(name: nil, site: SchemaSite(start))
                try schemaDeclaration(into: &ns)
                outside = ns
            }
        }
        if let outside { result.append(outside) }
        return result
    }

    /// `@key` or `@key("value")`, any number; a key may not repeat on one item.
    private mutating func schemaAnnotations() throws(ParseError) {
        var keys = Set<String>()
        while tok.kind == .at {
            let at = tok
            try advance()
            guard tok.kind == .ident else { throw expected("an annotation name after '@'") }
            let key = tok.text
            try advance()
            if tok.kind == .lparen {
                try advance()
                _ = try stringValue()
                try expect(.rparen, "')'")
            }
            guard keys.insert(key).inserted else { throw error("duplicate annotation @\(key)", at: at) }
        }
    }

    private mutating func schemaDeclaration(into ns: inout RawNamespace) throws(ParseError) {
        switch tok.kind == .ident ? tok.text : "" {
        case "entity": ns.entityTypes += try entityDeclaration()
        case "action": ns.actions += try actionDeclaration()
        case "type": ns.commonTypes.append(try commonTypeDeclaration())
        case "namespace": throw error("namespaces cannot be nested", at: tok)
        default: throw expected("'entity', 'action', 'type' or 'namespace'")
        }
    }

    /// An identifier that is not one of Cedar's reserved words (`__cedar` is allowed inside
    /// a path, where it names the built-in types: `__cedar::Long`).
    private mutating func schemaIdentifier(_ role: String, inPath: Bool = false) throws(ParseError) -> (String, SchemaSite) {
        guard tok.kind == .ident else { throw expected(role) }
        if !(inPath && tok.text == CedarNames.cedarNamespace) { try checkIdentifier(tok, as: role) }
        let t = tok
        try advance()
        return (t.text, SchemaSite(location(t)))
    }

    /// `A::B::C`.
    private mutating func schemaPath() throws(ParseError) -> RawName {
        let start = tok
        var parts = [try schemaIdentifier("a name", inPath: true).0]
        while tok.kind == .colonColon && peek().kind == .ident {
            try advance()
            parts.append(try schemaIdentifier("a name", inPath: true).0)
        }
        return RawName(components: parts, site: SchemaSite(location(start)))
    }

    /// An identifier or a string: attribute and action names.
    private mutating func schemaName(_ role: String) throws(ParseError) -> (String, SchemaSite) {
        if tok.kind == .string {
            let site = SchemaSite(location(tok))
            return (try stringValue(), site)
        }
        return try schemaIdentifier(role)
    }

    private mutating func commaSeparated<T>(_ item: (inout Parser) throws(ParseError) -> T) throws(ParseError) -> [T] {
        var out = [try item(&self)]
        while tok.kind == .comma {
            try advance()
            out.append(try item(&self))
        }
        return out
    }

    /// `Path` or `[Path, ...]` (possibly empty, no trailing comma).
    private mutating func entityTypeList() throws(ParseError) -> [RawName] {
        guard tok.kind == .lbracket else { return [try schemaPath()] }
        try advance()
        if tok.kind == .rbracket { try advance(); return [] }
        let out = try commaSeparated { (p: inout Parser) throws(ParseError) in try p.schemaPath() }
        try expect(.rbracket, "',' or ']'")
        return out
    }

    private mutating func entityDeclaration() throws(ParseError) -> [RawEntityDecl] {
        try advance()  // entity
        let names = try commaSeparated { (p: inout Parser) throws(ParseError) in try p.schemaIdentifier("an entity type name") }
        if isWord("enum") {
            try advance()
            try expect(.lbracket, "'['")
            let ids = try commaSeparated { (p: inout Parser) throws(ParseError) -> String in
                guard p.tok.kind == .string else { throw p.expected("an entity id string") }
                return try p.stringValue()
            }
            try expect(.rbracket, "',' or ']'")
            try expect(.semicolon, "';'")
            return names.map { RawEntityDecl(name: $0.0, kind: .enumerated(ids), site: $0.1) }
        }
        var parents: [RawName] = []
        if isWord("in") {
            try advance()
            parents = try entityTypeList()
        }
        var shape: TypeExpr? = nil
        if tok.kind == .assign || tok.kind == .lbrace {
            if tok.kind == .assign { try advance() }
            let site = SchemaSite(location(tok))
            try expect(.lbrace, "'{'")
            shape = .record(try attributeDeclarations(depth: 1), isOpen: false, site)
        }
        var tags: TypeExpr? = nil
        if isWord("tags") {
            try advance()
            tags = try schemaType(depth: 1)
        }
        guard tok.kind == .semicolon else {
            throw expected(tags == nil ? (shape == nil ? "'in', '{', 'tags' or ';'" : "'tags' or ';'") : "';'")
        }
        try advance()
        return names.map { RawEntityDecl(name: $0.0, kind: .standard(memberOf: parents, shape: shape, tags: tags), site: $0.1) }
    }

    /// Attribute declarations after an opening `{`, through the closing `}`.
    private mutating func attributeDeclarations(depth: Int) throws(ParseError) -> [RawAttribute] {
        var out: [RawAttribute] = []
        while tok.kind != .rbrace {
            try schemaAnnotations()
            let (name, site) = try schemaName("an attribute name")
            var required = true
            if tok.kind == .question { required = false; try advance() }
            try expect(.colon, "':'")
            let type = try schemaType(depth: depth + 1)
            out.append(RawAttribute(name: name, type: type, required: required, site: site))
            if tok.kind == .comma { try advance() } else if tok.kind != .rbrace { throw expected("',' or '}'") }
        }
        try advance()
        return out
    }

    private mutating func schemaType(depth: Int) throws(ParseError) -> TypeExpr {
        guard depth <= Parser.maxNesting else {
            throw error("type is nested too deeply (more than \(Parser.maxNesting) levels)", at: tok)
        }
        if tok.kind == .lbrace {
            let site = SchemaSite(location(tok))
            try advance()
            return .record(try attributeDeclarations(depth: depth), isOpen: false, site)
        }
        if isWord("Set") && peek().kind == .lt {
            try advance(); try advance()
            let element = try schemaType(depth: depth + 1)
            try expect(.gt, "'>'")
            return .set(element)
        }
        guard tok.kind == .ident else { throw expected("a type") }
        return .reference(try schemaPath(), .commonOrEntity)
    }

    private mutating func commonTypeDeclaration() throws(ParseError) -> RawCommonType {
        try advance()  // type
        let (name, site) = try schemaIdentifier("a type name")
        try expect(.assign, "'='")
        let type = try schemaType(depth: 1)
        try expect(.semicolon, "';'")
        return RawCommonType(name: name, type: type, site: site)
    }

    /// `"id"`, `id`, or `Path::"id"` in an action's `in [...]`.
    private mutating func actionReference() throws(ParseError) -> RawActionRef {
        let site = SchemaSite(location(tok))
        if tok.kind == .string { return RawActionRef(type: nil, id: try stringValue(), site: site) }
        let path = try schemaPath()
        if tok.kind == .colonColon && peek().kind == .string {
            try advance()
            return RawActionRef(type: path, id: try stringValue(), site: site)
        }
        guard path.components.count == 1 else {
            throw expected("'::' and an action id string after `\(path.text)`")
        }
        return RawActionRef(type: nil, id: path.components[0], site: site)
    }

    private mutating func actionDeclaration() throws(ParseError) -> [RawActionDecl] {
        let declLoc = location(tok)
        try advance()  // action
        let names = try commaSeparated { (p: inout Parser) throws(ParseError) in try p.schemaName("an action name") }
        var parents: [RawActionRef] = []
        if isWord("in") {
            try advance()
            if tok.kind == .lbracket {
                try advance()
                parents = try commaSeparated { (p: inout Parser) throws(ParseError) in try p.actionReference() }
                try expect(.rbracket, "',' or ']'")
            } else {
                parents = [try actionReference()]
            }
        }
        var applies: RawAppliesTo? = nil
        if isWord("appliesTo") {
            try advance()
            applies = try appliesToBlock(action: names[0].0, at: declLoc)
        }
        if isWord("attributes") {
            try advance()
            try expect(.lbrace, "'{'")
            guard tok.kind == .rbrace else { throw error("action attributes are not supported", at: tok) }
            try advance()
        }
        guard tok.kind == .semicolon else {
            throw expected(applies == nil ? "'in', 'appliesTo' or ';'" : "';'")
        }
        try advance()
        return names.map { RawActionDecl(name: $0.0, memberOf: parents, appliesTo: applies, site: $0.1) }
    }

    private mutating func appliesToBlock(action: String, at loc: SourceLocation) throws(ParseError) -> RawAppliesTo {
        try expect(.lbrace, "'{'")
        var principals: [RawName]? = nil, resources: [RawName]? = nil, context: TypeExpr?? = nil
        repeat {
            let keyTok = tok
            switch tok.kind == .ident ? tok.text : "" {
            case "principal", "resource":
                let isPrincipal = tok.text == "principal"
                guard (isPrincipal ? principals : resources) == nil else {
                    throw error("'\(keyTok.text)' is given twice for action \(cedarQuoted(action))", at: keyTok)
                }
                try advance()
                try expect(.colon, "':'")
                let types = try entityTypeList()
                guard !types.isEmpty else {
                    throw error("action \(cedarQuoted(action)) lists no \(keyTok.text) types; leave out appliesTo for an action that applies to nothing", at: keyTok)
                }
                if isPrincipal { principals = types } else { resources = types }
            case "context":
                guard context == nil else { throw error("'context' is given twice for action \(cedarQuoted(action))", at: keyTok) }
                try advance()
                try expect(.colon, "':'")
                if tok.kind == .lbrace {
                    let site = SchemaSite(location(tok))
                    try advance()
                    context = .some(.record(try attributeDeclarations(depth: 1), isOpen: false, site))
                } else {
                    context = .some(.reference(try schemaPath(), .common))
                }
            default:
                throw expected("'principal', 'resource' or 'context'")
            }
            if tok.kind == .comma { try advance() } else if tok.kind != .rbrace { throw expected("',' or '}'") }
        } while tok.kind != .rbrace
        try advance()
        guard let principals else { throw ParseError("action \(cedarQuoted(action)) has appliesTo without 'principal'", at: loc) }
        guard let resources else { throw ParseError("action \(cedarQuoted(action)) has appliesTo without 'resource'", at: loc) }
        return RawAppliesTo(principals: principals, resources: resources, context: context ?? nil)
    }
}
