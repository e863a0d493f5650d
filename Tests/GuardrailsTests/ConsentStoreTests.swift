import Cedar
import Guardrails
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func appendRaw(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_APPEND)
    precondition(fd >= 0)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

private func fileText(_ path: String) -> String {
    guard let f = fopen(path, "rb") else { return "" }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true { let n = fread(&buf, 1, buf.count, f); if n == 0 { break }; out += buf[0..<n] }
    return String(decoding: out, as: UTF8.self)
}

@Test func changesSurviveReopenAndReplayInOrder() throws {
    let dir = tempDirectory()
    do {
        let s = try ConsentStore(directory: dir)
        try s.grant(.cohort("onc301-de"), purpose: "secondary_research", evidence: "ICF v3", actor: "User::\"dpo\"",
                    now: Fixtures.date("2025-02-01"), grantedAt: Fixtures.date("2025-01-01"))
        try s.withdraw(.cohort("onc301-de"), purpose: "secondary_research", actor: "User::\"dpo\"", now: Fixtures.date("2026-03-01"))
        try s.grant(.dataset("gen-ch-wgs"), purpose: "ml_model_training", evidence: "eConsent 88", actor: "User::\"dpo\"",
                    now: Fixtures.date("2026-01-01"))
        try s.setHold(dataset: "onc-tmf", matter: "LIT-2026-004", reason: "product liability claim", actor: "User::\"legal\"",
                      now: Fixtures.date("2026-04-01"))
        try s.setHold(dataset: "onc-tmf", matter: "LIT-2026-005", reason: "second claim", actor: "User::\"legal\"",
                      now: Fixtures.date("2026-04-02"))
        try s.releaseHold(dataset: "onc-tmf", matter: "LIT-2026-004", reason: "settled", actor: "User::\"legal\"",
                          now: Fixtures.date("2026-05-01"))
    }
    let s = try ConsentStore(directory: dir)
    let snap = s.snapshot
    let rec = snap.records(.cohort("onc301-de"), purpose: "secondary_research")
    #expect(rec.count == 1)
    #expect(rec.first?.grantedAt == Fixtures.date("2025-01-01"))
    #expect(rec.first?.withdrawnAt == Fixtures.date("2026-03-01"))
    #expect(rec.first?.evidence == "ICF v3")
    #expect(snap.consentState(dataset: "x", cohort: "onc301-de", purpose: "secondary_research", at: Fixtures.date("2026-02-01")) == .granted)
    #expect(snap.consentState(dataset: "x", cohort: "onc301-de", purpose: "secondary_research", at: Fixtures.date("2026-03-01"))
            == .withdrawn(at: Fixtures.date("2026-03-01"), subject: .cohort("onc301-de")))
    #expect(snap.holdMatters(dataset: "onc-tmf", at: Fixtures.date("2026-05-02")) == ["LIT-2026-005"])
    // The released hold still counts for a moment before its release.
    #expect(snap.holdMatters(dataset: "onc-tmf", at: Fixtures.date("2026-04-30")) == ["LIT-2026-004", "LIT-2026-005"])
    #expect(snap.holds(dataset: "onc-tmf").map(\.matter) == ["LIT-2026-005"])
    #expect(s.history().map(\.seq) == [1, 2, 3, 4, 5, 6])
    #expect(s.history("onc-tmf").map(\.op.name) == ["hold.set", "hold.set", "hold.release"])
    #expect(s.history("onc301-de").map(\.actor) == ["User::\"dpo\"", "User::\"dpo\""])
    // The reopened store continues the sequence.
    try s.grant(.cohort("onc301-de"), purpose: "secondary_research", evidence: "re-consent", actor: "a", now: Fixtures.date("2026-06-01"))
    #expect(s.history().last?.seq == 7)
    #expect(s.snapshot.consentState(dataset: "x", cohort: "onc301-de", purpose: "secondary_research", at: Fixtures.date("2026-06-02")) == .granted)
}

@Test func aTornLastLineIsCutOnOpen() throws {
    let dir = tempDirectory()
    do {
        let s = try ConsentStore(directory: dir)
        try s.grant(.dataset("d"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.date("2026-01-01"))
    }
    let path = dir + "/" + ConsentStore.fileName
    let good = fileText(path)
    appendRaw(path, "{\"seq\":2,\"at\":1767225600000,\"op\":\"consent.withd")
    let s = try ConsentStore(directory: dir)
    #expect(fileText(path) == good)
    #expect(s.history().count == 1)
    try s.withdraw(.dataset("d"), purpose: "p", actor: "a", now: Fixtures.date("2026-02-01"))
    #expect(try ConsentStore(directory: dir).history().map(\.seq) == [1, 2])
}

@Test func aDamagedCompleteLineIsReportedNotCut() throws {
    let dir = tempDirectory()
    do {
        let s = try ConsentStore(directory: dir)
        try s.grant(.dataset("d"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.date("2026-01-01"))
    }
    appendRaw(dir + "/" + ConsentStore.fileName, "{\"seq\":2,\"garbage\":true}\n")
    #expect(throws: ConsentStoreError.corrupt(line: 2, message: "not a consent or hold change")) {
        try ConsentStore(directory: dir)
    }
}

@Test func aFailedSyncStopsTheStoreForGood() throws {
    let dir = tempDirectory()
    let failing = Atomic<Bool>(false)
    let calls = Atomic<Int>(0)
    let s = try ConsentStore(directory: dir, sync: { fd in
        calls.add(1, ordering: .relaxed)
        if failing.load(ordering: .relaxed) { errno = EIO; return -1 }
        return fdatasync(fd)
    })
    try s.grant(.dataset("d"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.date("2026-01-01"))
    failing.store(true, ordering: .relaxed)
    #expect(throws: ConsentStoreError.failed("fdatasync: \(String(cString: strerror(EIO)))")) {
        try s.withdraw(.dataset("d"), purpose: "p", actor: "a", now: Fixtures.date("2026-02-01"))
    }
    #expect(s.isFailed)
    // The unacknowledged withdrawal is not applied, and nothing is retried.
    #expect(s.snapshot.consentState(dataset: "d", cohort: nil, purpose: "p", at: Fixtures.date("2026-03-01")) == .granted)
    failing.store(false, ordering: .relaxed)
    let before = calls.load(ordering: .relaxed)
    #expect(throws: ConsentStoreError.self) {
        try s.setHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-03-01"))
    }
    #expect(calls.load(ordering: .relaxed) == before)
}

@Test func contradictoryChangesAreRefusedWithoutJournaling() throws {
    let s = try ConsentStore(directory: tempDirectory())
    #expect(throws: ConsentStoreError.self) { try s.withdraw(.dataset("d"), purpose: "p", actor: "a", now: Fixtures.now) }
    try s.grant(.dataset("d"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.now)
    #expect(throws: ConsentStoreError.self) { try s.grant(.dataset("d"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.now) }
    #expect(throws: ConsentStoreError.self) {
        try s.grant(.dataset("e"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.date("2026-01-01"), grantedAt: Fixtures.date("2026-02-01"))
    }
    try s.withdraw(.dataset("d"), purpose: "p", actor: "a", now: Fixtures.now)
    #expect(throws: ConsentStoreError.self) {
        try s.grant(.dataset("d"), purpose: "p", evidence: "backdated", actor: "a", now: Fixtures.date("2027-01-01"),
                    grantedAt: Fixtures.date("2026-01-01"))
    }
    #expect(throws: ConsentStoreError.self) { try s.releaseHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.now) }
    #expect(s.history().count == 2)
}

@Test func consentAndHoldIdsCompareByUnicodeScalars() throws {
    let s = try ConsentStore(directory: tempDirectory())
    try s.grant(.dataset("caf\u{E9}"), purpose: "p", evidence: "e", actor: "a", now: Fixtures.date("2026-01-01"))
    try s.setHold(dataset: "caf\u{E9}", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-01-01"))
    let snap = s.snapshot
    #expect(snap.consentState(dataset: "caf\u{E9}", cohort: nil, purpose: "p", at: Fixtures.now) == .granted)
    #expect(snap.consentState(dataset: "cafe\u{301}", cohort: nil, purpose: "p", at: Fixtures.now) == .none)
    #expect(snap.holdMatters(dataset: "cafe\u{301}", at: Fixtures.now).isEmpty)
}

/// A hold suspends disposal until its release takes effect: a moment before the release (or
/// before the hold was set: never decided as if a recorded hold did not exist) sees the hold;
/// the release's own moment and later do not. The same matter may be held again afterwards.
@Test(arguments: [
    ("2026-01-01", ["m"]),            // before the hold was set: still held (fail closed)
    ("2026-03-01", ["m"]),            // while held
    ("2026-05-31T23:59:59Z", ["m"]),  // one second before the release
    ("2026-06-01", [String]()),       // the release's moment
    ("2026-07-01", [String]()),
])
func aReleasedHoldCountsUntilItsReleaseTime(_ at: String, _ expected: [String]) throws {
    let s = try ConsentStore(directory: tempDirectory())
    try s.setHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-02-01"))
    try s.releaseHold(dataset: "d", matter: "m", reason: "settled", actor: "a", now: Fixtures.date("2026-06-01"))
    #expect(s.snapshot.holdMatters(dataset: "d", at: try CedarDatetime.parse(at)) == expected)
    #expect(s.snapshot.holds(dataset: "d").isEmpty)
}

@Test func aReleaseBeforeTheHoldWasSetIsRefusedAndAMatterMayBeHeldAgain() throws {
    let s = try ConsentStore(directory: tempDirectory())
    try s.setHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-02-01"))
    #expect(throws: ConsentStoreError.invalid("release at 2026-01-01 precedes the hold set at 2026-02-01")) {
        try s.releaseHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-01-01"))
    }
    try s.releaseHold(dataset: "d", matter: "m", reason: "r", actor: "a", now: Fixtures.date("2026-03-01"))
    try s.setHold(dataset: "d", matter: "m", reason: "again", actor: "a", now: Fixtures.date("2026-04-01"))
    #expect(s.snapshot.holds(dataset: "d").map(\.reason) == ["again"])
    // The new hold, unreleased, counts at every time, also before it was set.
    #expect(s.snapshot.holdMatters(dataset: "d", at: Fixtures.date("2026-03-15")) == ["m"])
}
