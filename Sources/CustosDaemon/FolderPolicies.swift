import Cedar
import CustosJSON

/// The policies of a folder as the daemon serves them: static policies and the links of its
/// templates in one `PolicySet`, validated against the folder's schema when it has one.
///
/// A template (`?principal`, `?resource` in its scope) decides nothing by itself: it takes part
/// only through the links `links.json` gives it, each an ordinary policy named by its link id.
/// A template no link names is kept out of the set and reported as a warning (`custos check
/// --strict` makes it an error), so a template can never sit in a folder silently unevaluated.
struct FolderPolicies {
    /// Static policies (file order) then linked ones (`links.json` order).
    var set: PolicySet
    /// The templates, linked or not (not in `set`).
    var templates: [Policy]
    /// What the load noticed but does not refuse: unlinked templates, policies that can never
    /// apply (`impossiblePolicy`), each `file:line:col: ...`.
    var warnings: [String]

    /// The most validation errors a load error's message shows; `details` has them all.
    static let shownErrors = 1

    /// The name a reason shows for a policy: a link's id, else the policy's `@id`, else `policyN`.
    static func name(_ p: Policy) -> String {
        p.link != nil ? p.id : (p.annotatedID ?? p.id)
    }

    /// Compiles the parsed policies (ids `policy0`, ... in file order, templates included, as
    /// Cedar numbers them), links the templates, and validates everything against `schema`.
    static func build(_ asts: [PolicyAST], links: PolicyStore.File?, linksPath: String,
                      schema: Schema?) throws(PolicyStoreError) -> FolderPolicies {
        var all: [Policy] = []
        all.reserveCapacity(asts.count)
        for (i, a) in asts.enumerated() {
            do { all.append(try Policy(id: "policy\(i)", ast: a)) } catch { throw PolicyStoreError(error.redactedDescription) }
        }
        let statics = all.filter { !$0.isTemplate }, templates = all.filter(\.isTemplate)
        let specs = try links.map { f throws(PolicyStoreError) in try parseLinks(f.contents, path: linksPath) } ?? []
        let linked = try link(specs, templates: templates, statics: statics, path: linksPath)
        var warnings: [String] = []
        let linkedTemplates = Set(linked.compactMap { $0.link.map { ScalarString($0.template) } })
        for t in templates where !linkedTemplates.contains(ScalarString(t.id)) {
            warnings.append("\(t.location): template \(label(t)) has no link in \(PolicyFolder.linksFileName), so it decides nothing; link it (docs/cedar.md, \"Templates\") or remove it")
        }
        if let schema {
            let validator = Validator(schema: schema)
            var errors: [String] = []
            for p in all {  // in file order, so the first error shown is the first in the folder
                let (e, w) = validator.validate(p)
                errors += e.map(\.description)
                warnings += w.map(\.description)
            }
            for (i, p) in linked.enumerated() {
                let origin = "\(linksPath): [\(i)]: link \(cedarQuoted(p.id)) of template \(cedarQuoted(templateName(p, templates)))"
                errors += validator.validate(link: p).map { e in "\(origin): \(e.message)\(e.help.map { "; " + $0 } ?? "")" }
            }
            if !errors.isEmpty {
                let more = errors.count - shownErrors
                let tail = more > 0 ? " (and \(more) more validation error\(more == 1 ? "" : "s"); custos check lists them all)" : ""
                throw PolicyStoreError("\(errors[0])\(tail)", details: errors)
            }
        }
        return FolderPolicies(set: PolicySet(compiled: statics + linked), templates: templates, warnings: warnings)
    }

    private static func label(_ t: Policy) -> String {
        t.annotatedID.map { "\(cedarQuoted($0)) (\(t.id))" } ?? t.id
    }

    private static func templateName(_ linked: Policy, _ templates: [Policy]) -> String {
        let id = linked.link?.template ?? ""
        return templates.first { $0.id.utf8.elementsEqual(id.utf8) }.map(name) ?? id
    }

    private static func parseLinks(_ bytes: [UInt8], path: String) throws(PolicyStoreError) -> [TemplateLinkSpec] {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw PolicyStoreError("\(path):\(error.line):\(error.column): invalid JSON: \(error.redactedMessage)")
        }
        do { return try TemplateLinkSpec.parse(json) } catch {
            var e = error
            e.file = path
            throw PolicyStoreError(e.description)
        }
    }

    /// Links every spec. A template is named as in reasons (its `@id`, else `policyN`); a link
    /// id must differ from every other policy's, template's and link's name and Cedar id, so a
    /// reason always names one policy.
    private static func link(_ specs: [TemplateLinkSpec], templates: [Policy], statics: [Policy],
                             path: String) throws(PolicyStoreError) -> [Policy] {
        // Cedar's own ids (`policyN`) are taken too, as the reference engine refuses a link id
        // that is one, even where an `@id` names the policy.
        var taken: [ScalarString: String] = [:]
        for p in statics {
            for n in [name(p), p.id] where taken[ScalarString(n)] == nil { taken[ScalarString(n)] = "policy \(p.id) at \(p.location)" }
        }
        for t in templates {
            for n in [name(t), t.id] where taken[ScalarString(n)] == nil { taken[ScalarString(n)] = "template \(t.id) at \(t.location)" }
        }
        var out: [Policy] = []
        out.reserveCapacity(specs.count)
        for (i, spec) in specs.enumerated() {
            let at = "\(path): [\(i)]"
            let wanted = ScalarString(spec.templateID)
            let matches = templates.filter { ScalarString(name($0)) == wanted }
            guard let template = matches.first else {
                let isStatic = statics.contains { ScalarString(name($0)) == wanted }
                let known = templates.map(name)
                throw PolicyStoreError("\(at).template_id: \(isStatic ? "\(cedarQuoted(spec.templateID)) is a policy without slots, not a template" : "no template is named \(cedarQuoted(spec.templateID))") (templates are named by their @id; \(known.isEmpty ? "the folder has none" : "known: " + known.map(cedarQuoted).joined(separator: ", ")))")
            }
            guard matches.count == 1 else {
                throw PolicyStoreError("\(at).template_id: \(matches.count) templates are named \(cedarQuoted(spec.templateID)) (\(matches.map { "\($0.id) at \($0.location)" }.joined(separator: ", "))); give each its own @id")
            }
            if let other = taken[ScalarString(spec.linkID)] {
                throw PolicyStoreError("\(at).link_id: \(cedarQuoted(spec.linkID)) is already the name of \(other); reasons name policies, so every link id must be unique")
            }
            taken[ScalarString(spec.linkID)] = "link [\(i)] of \(path)"
            do { out.append(try template.linked(id: spec.linkID, values: spec.values)) } catch {
                throw PolicyStoreError("\(at).args: \(error.message)")
            }
        }
        return out
    }
}
