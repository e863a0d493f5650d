import Cedar
import Testing

private func policies(_ s: String) throws(ParseError) -> [PolicyAST] {
    try CedarParser.parsePolicies(s, file: "policies.cedar")
}

private func only(_ s: String) throws -> PolicyAST {
    let ps = try policies(s)
    try #require(ps.count == 1)
    return ps[0]
}

@Test func aPolicySetKeepsFileOrderAndEffects() throws {
    let ps = try policies("""
        // leading comment
        permit(principal, action, resource);
        forbid (principal, action, resource) when { true } unless { false } when { 1 == 1 };

        @id("third") permit(principal,action,resource,);
        """)
    #expect(ps.map(\.effect) == [.permit, .forbid, .permit])
    #expect(ps[1].conditions.map(\.kind) == [.when, .unless, .when])
    #expect(ps[1].conditions[1].body == SX.bool(false))
    #expect(ps[2].annotations.map(\.key) == ["id"])
    #expect(ps[0].location == SourceLocation(file: "policies.cedar", line: 2, column: 1, offset: 19))
    #expect(ps[2].location.line == 5)
}

@Test(arguments: ["", "   \n", "// only a comment", "// comment\n// another\n"])
func textWithoutPoliciesIsAnEmptySet(_ text: String) throws {
    #expect(try policies(text).isEmpty)
}

@Test func annotationsKeepOrderAndAValuelessKeyReadsAsEmpty() throws {
    let p = try only(#"@id("p1") @advice("a\n\u{1F600}") @flag @if("kw") @__cedar permit(principal, action, resource);"#)
    #expect(p.annotations.map(\.key) == ["id", "advice", "flag", "if", "__cedar"])
    #expect(p.annotations.map(\.value) == ["p1", "a\n\u{1F600}", "", "kw", ""])
    #expect(p.annotations[1].location.column == 11)
}

struct ScopeCase: Sendable, CustomTestStringConvertible {
    var scope: String
    var principal: ScopeConstraint
    var action: ActionConstraint
    var resource: ScopeConstraint
    var testDescription: String { scope }
}

private let u = EntityUID("User", "alice"), g = EntityUID("Ns::Group", "g")
private let view = EntityUID("Action", "view"), edit = EntityUID("Ns::Action", "edit")

@Test(arguments: [
    ScopeCase(scope: "principal, action, resource", principal: .any, action: .any, resource: .any),
    ScopeCase(scope: #"principal == User::"alice", action == Action::"view", resource in Ns::Group::"g""#,
              principal: .eq(.entity(u)), action: .eq(view), resource: .in(.entity(g))),
    ScopeCase(scope: #"principal in Ns::Group::"g", action in Ns::Action::"edit", resource == User::"alice""#,
              principal: .in(.entity(g)), action: .in(edit), resource: .eq(.entity(u))),
    ScopeCase(scope: #"principal is User, action in [Action::"view", Ns::Action::"edit",], resource is Ns::Doc"#,
              principal: .is(EntityType("User")), action: .inSet([view, edit]), resource: .is(EntityType("Ns::Doc"))),
    ScopeCase(scope: #"principal is User in Ns::Group::"g", action in [], resource is Ns::Doc in ?resource"#,
              principal: .isIn(EntityType("User"), .entity(g)), action: .inSet([]),
              resource: .isIn(EntityType("Ns::Doc"), .slot(.resource))),
    ScopeCase(scope: "principal == ?principal, action, resource in ?resource",
              principal: .eq(.slot(.principal)), action: .any, resource: .in(.slot(.resource))),
    ScopeCase(scope: #"principal in ((User::"alice")), action in ([(Action::"view")]), resource == (?resource),"#,
              principal: .in(.entity(u)), action: .inSet([view]), resource: .eq(.slot(.resource))),
])
func scopeConstraintsParse(_ t: ScopeCase) throws {
    let p = try only("permit(\(t.scope));")
    #expect(p.principal == t.principal)
    #expect(p.action == t.action)
    #expect(p.resource == t.resource)
}

@Test func slotsMakeATemplate() throws {
    #expect(try only("permit(principal == ?principal, action, resource);").isTemplate)
    #expect(try only("permit(principal, action, resource is T in ?resource);").isTemplate)
    #expect(try !only(#"permit(principal == User::"alice", action, resource);"#).isTemplate)
}

@Test(arguments: [
    Rejection("permit(principal, action);", 1, 25, "must list principal, action and resource"),
    Rejection("permit();", 1, 8, "expected 'principal' but found ')'"),
    Rejection("permit(action, principal, resource);", 1, 8, "found 'action' where 'principal' must come"),
    Rejection("permit(principal, action, resource, context);", 1, 37, "move 'context' into a condition"),
    Rejection("permit(principal, action, resource,,);", 1, 36, "expected ')' to close the scope"),
    Rejection("permit(principal, action, resource)", 1, 36, "expected 'when', 'unless' or ';' but found end of input"),
    Rejection("permit(principal, action, resource);;", 1, 37, "expected 'permit', 'forbid' or '@' but found ';'"),
    Rejection("allow(principal, action, resource);", 1, 1, "expected 'permit', 'forbid' or '@' but found 'allow'"),
    Rejection("permit(principal, action, resource) when {};", 1, 43, "a 'when' condition cannot be empty"),
    Rejection("permit(principal, action, resource) unless { };", 1, 46, "a 'unless' condition cannot be empty"),
    Rejection("permit(principal, action, resource) whenever { true };", 1, 37, "expected 'when', 'unless' or ';'"),
    Rejection("permit(principal, action, resource) when ( true );", 1, 42, "expected '{' but found '('"),
    Rejection("permit(principal, action, resource) when { true }", 1, 50, "after the condition"),
    Rejection("permit(principal == ?resource, action, resource);", 1, 21, "expected an entity or ?principal here but found '?resource'"),
    Rejection("permit(principal, action, resource in ?principal);", 1, 39, "or ?resource here"),
    Rejection("permit(principal == ?foo, action, resource);", 1, 21, "found '?foo'"),
    Rejection("permit(principal, action == ?principal, resource);", 1, 29, "template slots cannot constrain the action"),
    Rejection(#"permit(principal, action in [Action::"a", ?principal], resource);"#, 1, 43, "template slots cannot constrain"),
    Rejection(#"permit(principal is User == User::"x", action, resource);"#, 1, 26, "'is' cannot be combined with '=='"),
    Rejection("permit(principal, action is Action, resource);", 1, 26, "'is' cannot be used in the action scope"),
    Rejection(#"permit(principal in [User::"a"], action, resource);"#, 1, 21, "expected an entity such as Type::\"id\" or ?principal"),
    Rejection(#"permit(principal, action == [Action::"a"], resource);"#, 1, 29, "use 'action in [...]'"),
    Rejection(#"permit(principal, action in [A::"a"], resource);"#, 1, 30, "needs an entity of type Action"),
    Rejection(#"permit(principal, action == Action::Foo::"x", resource);"#, 1, 29, "needs an entity of type Action"),
    Rejection("permit(principal == principal, action, resource);", 1, 30, "expected '::' and an entity id string"),
    Rejection(#"permit(principal == User::"a".x, action, resource);"#, 1, 30, "expected ','"),
    Rejection(#"permit(principal in User::"a" || true, action, resource);"#, 1, 31, "expected ','"),
    Rejection(#"permit(principal > User::"a", action, resource);"#, 1, 18, "only '==', 'in' and 'is' may constrain 'principal'"),
    Rejection("permit(principal: User, action, resource);", 1, 17, "type constraints with ':' are not supported"),
    Rejection("permit(principal is ?principal, action, resource);", 1, 21, "expected an entity type name"),
    Rejection(#"permit(principal is "User", action, resource);"#, 1, 21, "expected an entity type name"),
    Rejection("permit(principal is (User), action, resource);", 1, 21, "expected an entity type name"),
    Rejection(#"permit(principal in (User::"a", action, resource);"#, 1, 31, "expected ')' but found ','"),
    Rejection("permit(? principal, action, resource);", 1, 8, "`?` must be followed by a slot name"),
    Rejection(#"@id("a") @id("b") permit(principal, action, resource);"#, 1, 10, "duplicate annotation @id"),
    Rejection(#"@a::b("a") permit(principal, action, resource);"#, 1, 3, "expected 'permit', 'forbid' or another annotation but found '::'"),
    Rejection("@a(1) permit(principal, action, resource);", 1, 4, "expected a string literal but found '1'"),
    Rejection("@a() permit(principal, action, resource);", 1, 4, "expected a string literal but found ')'"),
    Rejection(#"@a("x",) permit(principal, action, resource);"#, 1, 7, "expected ')' but found ','"),
    Rejection(#"@a("\q") permit(principal, action, resource);"#, 1, 5, "not a valid escape"),
    Rejection("@a", 1, 3, "expected 'permit', 'forbid' or another annotation but found end of input"),
    Rejection(#"@("a") permit(principal, action, resource);"#, 1, 2, "expected an annotation name after '@'"),
    Rejection("@ permit(principal, action, resource);", 1, 10, "expected a string literal but found 'principal'"),
    Rejection("permit(principal, action, resource) when { ?principal };", 1, 44, "only appear in the policy scope"),
    Rejection("permit(principal, action, resource) when { true }; /* x */", 1, 52, "unexpected character '/'"),
    Rejection("permit(principal, action, resource)\n  when { principal.foo(1) };", 2, 20, "'foo' is not a Cedar method"),
    Rejection("permit(principal, action, resource)\nwhen { (1 + 2 };", 2, 15, "expected ')' but found '}'"),
    Rejection("permit(principal, action, resource) when { 1 == 2 == 3 };", 1, 51, "cannot be chained"),
])
func malformedPoliciesReportWhereAndWhat(_ r: Rejection) throws {
    let error = try #require(parseError { () throws(ParseError) in try policies(r.text) })
    #expect(error.location.line == r.line, "\(error)")
    #expect(error.location.column == r.column, "\(error)")
    #expect(error.message.contains(r.says), "\(error)")
}

@Test func errorsRenderAsFileLineColumnExpectedAndFound() throws {
    let error = try #require(parseError { () throws(ParseError) in
        try policies("permit(principal, action, resource);\n\npermit(principal, action, resource when { true };")
    })
    #expect(error.description == "policies.cedar:3:36: expected '==', 'in', 'is', ',' or ')' after 'resource' but found 'when'")
}

@Test(arguments: [
    (#"User::"alice""#, EntityUID("User", "alice")),
    (#"A::B::Type::"id with \"quotes\"""#, EntityUID("A::B::Type", "id with \"quotes\"")),
    ("  Action::\"\"  ", EntityUID("Action", "")),
    (#"principal::"x""#, EntityUID("principal", "x")),
])
func entityUIDsParseFromText(_ text: String, _ uid: EntityUID) throws {
    #expect(try CedarParser.parseEntityUID(text) == uid)
}

@Test(arguments: [
    Rejection("User", 1, 5, "expected '::' and an entity id string but found end of input"),
    Rejection(#"User::"a" x"#, 1, 11, "expected end of input but found 'x'"),
    Rejection(#"if::"a""#, 1, 1, "'if' is a reserved word"),
    Rejection(#"User::"a"::"b""#, 1, 10, "expected end of input but found '::'"),
    Rejection(#"__cedar::"a""#, 1, 1, "'__cedar' is reserved"),
    Rejection("User::'a'", 1, 7, "unexpected character '''"),
    Rejection("", 1, 1, #"expected an entity such as Type::"id" but found end of input"#),
    Rejection("A::B::", 1, 7, "expected an identifier or an entity id string after '::'"),
    Rejection(#"User::"\q""#, 1, 8, "not a valid escape"),
])
func malformedEntityUIDsAreRejected(_ r: Rejection) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseEntityUID(r.text) })
    #expect(error.location.line == r.line, "\(error)")
    #expect(error.location.column == r.column, "\(error)")
    #expect(error.message.contains(r.says), "\(error)")
}

@Test(arguments: [("User", "User"), ("A::B::User", "A::B::User"), ("_x1", "_x1"), ("principal", "principal"),
                  (" Ns :: Action // comment", "Ns::Action")])
func namesParse(_ text: String, _ name: String) throws {
    #expect(try CedarParser.parseName(text) == EntityType(name))
}

@Test(arguments: [
    Rejection("", 1, 1, "expected an entity type name but found end of input"),
    Rejection("A::", 1, 4, "expected an identifier after '::' but found end of input"),
    Rejection("A::in", 1, 4, "'in' is a reserved word"),
    Rejection("if", 1, 1, "'if' is a reserved word"),
    Rejection("__cedar", 1, 1, "'__cedar' is reserved"),
    Rejection("A::__cedar", 1, 4, "'__cedar' is reserved"),
    Rejection("1A", 1, 1, "expected an entity type name but found '1'"),
    Rejection("A B", 1, 3, "expected end of input but found 'B'"),
    Rejection(#"A::"x""#, 1, 2, "not an entity"),
    Rejection("A.B", 1, 2, "expected end of input but found '.'"),
    Rejection("é", 1, 1, "unexpected character 'é'"),
])
func invalidNamesAreRejected(_ r: Rejection) throws {
    let error = try #require(parseError { () throws(ParseError) in try CedarParser.parseName(r.text) })
    #expect(error.location.line == r.line, "\(error)")
    #expect(error.location.column == r.column, "\(error)")
    #expect(error.message.contains(r.says), "\(error)")
}
