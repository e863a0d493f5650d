import CustosJSON
import CustosServer
import Glibc
import Testing

/// The test process's own uid stands in for a non-admin caller: denying it must refuse the call.
@Test func callIsForbiddenWhenTheCallersUIDIsDenied_ownUIDAsTheNonAdminCaller() throws {
    let access = AccessPolicy(["secret": AccessRule(deniedUIDs: [getuid()])])
    try withServer("deny", access: access) { s in
        let c = try RPCClient(path: s.path)
        let r = try c.roundTrip(#"{"jsonrpc":"2.0","method":"secret","id":1}"#)
        #expect(errorCode(r) == RPCError.forbiddenCode)
        #expect(r?["id"] == .int(1))
        #expect(s.probe.calls.load(ordering: .relaxed) == 0) // handler never ran
        let refused = s.probe.refused.withLock { $0.map { ($0.0, $0.1.uid) } }
        #expect(refused.count == 1)
        #expect(refused.first?.0 == "secret")
        #expect(refused.first?.1 == getuid())
        // Other methods are unaffected.
        #expect(try c.call("add", params: .object(JSONObject(["a": .int(1), "b": .int(1)]))) == .success(.int(2)))
    }
}

/// An allow list that names only another uid (own uid + 1) refuses the test process.
@Test func callIsForbiddenWhenTheAllowListOmitsTheCaller_ownUIDAsTheNonAdminCaller() throws {
    let other = getuid() &+ 1
    let access = AccessPolicy(["secret": AccessRule(allowedUIDs: [other])])
    try withServer("allow", access: access) { s in
        let c = try RPCClient(path: s.path)
        #expect(errorCode(try c.roundTrip(#"{"jsonrpc":"2.0","method":"secret","id":1}"#)) == RPCError.forbiddenCode)
        // A refused notification is still unanswered but reaches the audit hook.
        try c.send(line: #"{"jsonrpc":"2.0","method":"secret"}"#)
        #expect(try c.roundTrip(#"{"jsonrpc":"2.0","method":"whoami","id":2}"#)?["id"] == .int(2))
        #expect(s.probe.refused.withLock { $0.count } == 2)
        #expect(s.probe.calls.load(ordering: .relaxed) == 0)
    }
}

@Test func callIsAllowedByGroupRule() throws {
    let access = AccessPolicy(["secret": AccessRule(allowedUIDs: [], allowedGIDs: [getgid()])])
    try withServer("gid", access: access) { s throws in
        #expect(try RPCClient(path: s.path).call("secret") == .success(.string("the secret")))
    }
}

@Test func reloadedAccessPolicyAppliesToOpenConnections() throws {
    let access = AccessPolicy(["secret": AccessRule(deniedUIDs: [getuid()])])
    try withServer("reload", access: access) { s in
        let c = try RPCClient(path: s.path)
        #expect(errorCode(try c.roundTrip(#"{"jsonrpc":"2.0","method":"secret","id":1}"#)) == RPCError.forbiddenCode)
        try s.server.dispatcher.updateAccess(AccessPolicy())
        #expect(try c.call("secret") == .success(.string("the secret")))
        try s.server.dispatcher.updateAccess(AccessPolicy(defaultRule: .nobody))
        #expect(errorCode(try c.roundTrip(#"{"jsonrpc":"2.0","method":"add","id":3}"#)) == RPCError.forbiddenCode)
    }
}

@Test func accessConfigurationNamingAnUnknownMethodIsRejected() {
    #expect(throws: AccessConfigError.self) {
        _ = try Dispatcher(methods: testMethods(Probe()), access: AccessPolicy(["sekret": .nobody]))
    }
}

@Test(arguments: [
    (AccessRule.anyone, true),
    (AccessRule.nobody, false),
    (AccessRule(allowedUIDs: [5]), true),
    (AccessRule(allowedUIDs: [6]), false),
    (AccessRule(allowedUIDs: [6], allowedGIDs: [7]), true),
    (AccessRule(allowedUIDs: [5], deniedGIDs: [7]), false),
    (AccessRule(deniedUIDs: [5]), false),
])
func accessRuleDecidesForUID5GID7(_ rule: AccessRule, _ permitted: Bool) {
    #expect(rule.permits(uid: 5, gid: 7) == permitted)
}

@Test(arguments: [
    (AccessRule(allowedGIDs: [990]), true),                      // allowed through a supplementary group
    (AccessRule(allowedGIDs: [991]), false),
    (AccessRule(allowedUIDs: [5], deniedGIDs: [990]), false),    // a deny on any group refuses
    (AccessRule(allowedGIDs: [7], deniedGIDs: [42]), false),
    (AccessRule(deniedGIDs: [991]), true),
])
func supplementaryGroupsCountLikeTheEffectiveGroup(_ rule: AccessRule, _ permitted: Bool) {
    #expect(rule.permits(uid: 5, gid: 7, groups: [42, 990]) == permitted)
}

/// A privilege is named in the access configuration like a method, but only a rule naming it
/// grants it: `access.default` never does. Handlers see it in `CallContext.holds`.
@Suite struct PrivilegeTests {
    static func dispatcher(_ access: AccessPolicy) throws -> Dispatcher {
        var t = MethodTable()
        let p = t.registerPrivilege("entities")
        t.register("whoholds") { _, caller throws(RPCError) in .bool(caller.holds(p)) }
        return try Dispatcher(methods: t, access: access)
    }

    static let me = CallContext(uid: 500, gid: 600, pid: 1, connectionID: 1, groups: [700])

    @Test(arguments: [
        (AccessPolicy(), false),
        (AccessPolicy(defaultRule: .anyone), false),
        (AccessPolicy(["entities": .anyone]), true),
        (AccessPolicy(["entities": AccessRule(allowedUIDs: [500])]), true),
        (AccessPolicy(["entities": AccessRule(allowedUIDs: [], allowedGIDs: [700])]), true),
        (AccessPolicy(["entities": AccessRule(allowedUIDs: [501])]), false),
        (AccessPolicy(["entities": .nobody]), false),
    ] as [(AccessPolicy, Bool)])
    func aPrivilegeIsGrantedOnlyByARuleNamingIt(_ access: AccessPolicy, _ held: Bool) throws {
        let d = try Self.dispatcher(access)
        #expect(try d.call("whoholds", params: Params(nil), context: Self.me) == .bool(held))
    }

    @Test func whatACallerSetsInItsContextIsReplacedByTheRulesVerdict() throws {
        var forged = Self.me
        forged.granted = .max
        #expect(try Self.dispatcher(AccessPolicy()).call("whoholds", params: Params(nil), context: forged) == .bool(false))
    }

    @Test func anUnknownNameListsMethodsAndPrivileges() throws {
        do {
            _ = try Self.dispatcher(AccessPolicy(["entitys": .anyone]))
            Issue.record("accepted an unknown name")
        } catch let error as AccessConfigError {
            #expect(error.message.contains("\"entitys\"") && error.message.contains("privileges: entities"), "\(error.message)")
        }
    }
}

/// The caller's supplementary groups come from the kernel or the caller is not admitted: a
/// `deny_gids` naming one of them must never be skipped because the groups were unknown.
@Suite struct PeerGroupsTests {
    @Test func aUnixSocketPeerHasItsGroupsAndSomethingElseHasNone() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let groups = try #require(PeerCredentials.groups(of: pair[0]))
        #expect(Set(groups) == Set((try? currentGroups()) ?? groups))
        #expect(PeerCredentials.of(socket: pair[0])?.uid == getuid())
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        #expect(PeerCredentials.groups(of: p[0]) == nil, "not a socket: the kernel cannot say")
        #expect(PeerCredentials.of(socket: p[0]) == nil)
    }

    func currentGroups() throws -> [UInt32] {
        let n = getgroups(0, nil)
        var g = [gid_t](repeating: 0, count: Int(n))
        #expect(getgroups(n, &g) == n)
        return g.map { UInt32($0) }
    }
}
