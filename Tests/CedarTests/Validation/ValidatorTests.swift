import Testing
import Foundation
import Cedar

/// What a validation error tells a policy author, and the validator's limits.
struct ValidatorTests {
    static let schema = ValidationFixture.schemas["clinic.cedarschema"]!

    static func validate(_ text: String) throws -> ValidationReport {
        Validator(schema: schema).validate(try PolicySet.parse(text, file: "policies.cedar"))
    }

    @Test func aMisspeltAttributeNamesThePolicyTheLocationAndTheNearestName() throws {
        let r = try Self.validate("""
        permit(principal, action, resource is Dataset);
        @id("forbid-raw")
        forbid(principal, action == Action::"read", resource)
        when { resource.stat == "raw" };
        """)
        let e = try #require(r.errors.first)
        #expect(r.errors.count == 1)
        #expect(e.kind == .unsafeAttributeAccess)
        #expect(e.policyID == "policy1")
        #expect(e.policyName == "forbid-raw")
        #expect(e.location.line == 4 && e.location.column == 8)
        #expect(e.help == "did you mean state?")
        #expect(e.description == #"policies.cedar:4:8: policy "forbid-raw" (policy1): attribute stat not found on entity type Dataset; did you mean state?"#)
    }

    @Test(arguments: [
        ("permit(principal, action == Action::\"reed\", resource);", "did you mean Action::\"read\"?"),
        ("permit(principal is Usr, action, resource);", "did you mean User?"),
        ("permit(principal, action == Action::\"read\", resource) when { context.mfaa };", "did you mean mfa?"),
    ])
    func unknownNamesSuggestTheNearestDeclaredOne(_ text: String, _ help: String) throws {
        let helps = try Self.validate(text).errors.compactMap(\.help)
        #expect(helps.contains(help), "\(helps)")
    }

    @Test func aPolicyThatCanNeverApplyValidatesWithAWarning() throws {
        let r = try Self.validate(#"permit(principal, action == Action::"read", resource) when { principal == resource };"#)
        #expect(r.passed)
        #expect(r.warnings.map(\.kind) == [.impossiblePolicy])
    }

    @Test func templatesAreCheckedForEveryTypeTheirSlotsMayBeLinkedTo() throws {
        #expect(try Self.validate(#"permit(principal in ?principal, action == Action::"read", resource) when { principal.level > 1 };"#).passed)
        let r = try Self.validate(#"permit(principal == ?principal, action == Action::"read", resource) when { principal.lvl > 1 };"#)
        #expect(r.errors.map(\.kind) == [.unsafeAttributeAccess])
    }

    @Test func everyErrorOfAPolicyIsReportedOnce() throws {
        let r = try Self.validate(#"permit(principal, action in [Action::"read", Action::"list"], resource) when { resource.stat == principal.nam };"#)
        #expect(r.errors.count == 2)  // both attributes, once each although two environments fail
    }

    @Test func theDeepestExpressionThePolicyParserAcceptsValidatesOnASmallStack() throws {
        // The parser bounds expression depth; the type checker recurses once per level, so
        // the deepest accepted expression must validate on a 512 KiB thread stack.
        var expr = "principal.level"
        for _ in 0..<196 { expr = "(\(expr) + 1)" }
        let text = "permit(principal, action == Action::\"read\", resource) when { \(expr) > 0 };"
        let set = try PolicySet.parse(text, file: "deep.cedar")
        var flat = "principal.level"
        for _ in 0..<990 { flat += " + 1" }
        let wide = try PolicySet.parse("permit(principal, action == Action::\"read\", resource) when { \(flat) > 0 };", file: "wide.cedar")
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var passed = (false, false)
        let t = Thread {
            passed = (Validator(schema: Self.schema).validate(set).passed, Validator(schema: Self.schema).validate(wide).passed)
            done.signal()
        }
        t.stackSize = 512 * 1024
        t.start()
        done.wait()
        #expect(passed == (true, true))
    }
}
