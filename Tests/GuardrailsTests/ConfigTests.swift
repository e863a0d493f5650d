import CustosJSON
import Guardrails
import Testing

@Test func exampleConfigurationLoadsAndIsActive() throws {
    let c = try GuardrailConfig.load(policiesFolder: Fixtures.policiesFolder)
    #expect(c.status == .active(files: GuardrailConfig.fileNames.map { "guardrails/" + $0 }))
    #expect(c.regions?.regions["gr-athens"]?.jurisdiction == "GR")
    #expect(c.regions?.regions["uk-london"]?.jurisdiction == "GB")
    #expect(c.transfers?.adequacy["GB"] != nil)
    #expect(c.transfers?.adequacy["EPO"] != nil)
    #expect(c.purposes?.purposes["secondary_research"]?.consentBased == true)
    #expect(c.purposes?.purposes["safety_reporting"]?.consentBased == false)
}

@Test func folderWithoutGuardrailFilesIsInactive() throws {
    let c = try GuardrailConfig.load(policiesFolder: "/nonexistent/custos-policies")
    #expect(c.status == .inactive)
    #expect(!c.status.isActive)
    #expect(try GuardrailConfig.parse(files: [:]).status == .inactive)
}

@Test func inactiveGuardrailsAllowEverything() {
    let out = Guardrails.evaluate([Fixtures.oncDE], request: GuardrailRequest(region: "in-hyderabad", now: Fixtures.now),
                                  config: .inactive, consent: .empty)
    #expect(out.allowed)
}

/// (file, text to replace, replacement, expected JSON path, fragment of the message)
struct BadConfig: Sendable, CustomStringConvertible {
    var file: String, find: String, replace: String, path: String, message: String
    var description: String { "\(file) \(path)" }
}

let badConfigs: [BadConfig] = [
    BadConfig(file: "regions.json", find: "\"jurisdiction\": \"IN\"", replace: "\"jurisdiction\": \"XX\"",
              path: "$.regions[\"in-hyderabad\"].jurisdiction", message: "ISO 3166-1"),
    BadConfig(file: "regions.json", find: "\"last_reviewed\"", replace: "\"last_reviwed\"",
              path: "$.last_reviwed", message: "unknown key"),
    BadConfig(file: "regions.json", find: "\"IS\", \"LI\", \"NO\"]", replace: "\"IS\", \"LI\", \"NO\", \"CH\"]",
              path: "$.eea[30]", message: "not in the EEA"),
    // EU spellings are named as the file wrote them, beside the ISO code the check used.
    BadConfig(file: "regions.json", find: "\"IS\", \"LI\", \"NO\"]", replace: "\"IS\", \"LI\", \"NO\", \"UK\"]",
              path: "$.eea[30]", message: "UK (read as GB) is not in the EEA"),
    BadConfig(file: "transfers.json", find: "{\"destination\": \"NZ\"", replace: "{\"destination\": \"EL\"",
              path: "$.adequacy[8].destination", message: "EL (read as GR) is in the EEA"),
    BadConfig(file: "regions.json", find: "\"FR\", \"DE\",", replace: "\"FR\",",
              path: "$.eea", message: "missing EEA members DE"),
    BadConfig(file: "regions.json", find: "\"EPO\": {", replace: "\"DE\": {",
              path: "$.jurisdictions.DE", message: "ISO 3166-1 country code"),
    BadConfig(file: "transfers.json", find: "{\"destination\": \"NZ\"", replace: "{\"destination\": \"FR\"",
              path: "$.adequacy[8].destination", message: "in the EEA"),
    BadConfig(file: "transfers.json", find: "{\"destination\": \"NZ\"", replace: "{\"destination\": \"CH\"",
              path: "$.adequacy[8].destination", message: "second adequacy entry"),
    BadConfig(file: "transfers.json", find: "\"scope\": \"whole_territory\", \"decision\": \"Decision 2013/65/EU\"",
              replace: "\"scope\": \"whole_territory\", \"requires\": \"x\", \"decision\": \"Decision 2013/65/EU\"",
              path: "$.adequacy[8].requires", message: "contradicts"),
    BadConfig(file: "transfers.json", find: "\"kind\": \"bcr\"", replace: "\"kind\": \"derogation\"",
              path: "$.bases[1].kind", message: "Art 49"),
    BadConfig(file: "transfers.json", find: "\"regions\": [\"sg-cro\"]", replace: "\"regions\": [\"eu-west-1\"]",
              path: "$.bases[0].regions[0]", message: "in the EEA"),
    BadConfig(file: "transfers.json", find: "\"regions\": [\"sg-cro\"]", replace: "\"regions\": [\"sg-cro\", \"sg-cro\"]",
              path: "$.bases[0].regions[1]", message: "listed twice"),
    BadConfig(file: "transfers.json", find: "\"tia\": \"TIA-2025-07\", ", replace: "",
              path: "$.bases[0].tia", message: "missing"),
    BadConfig(file: "transfers.json", find: "\"valid_until\": \"2031-12-27\"", replace: "\"valid_until\": \"27/12/2031\"",
              path: "$.adequacy[1].valid_until", message: "YYYY-MM-DD"),
    BadConfig(file: "retention.json", find: "\"period\": \"P25Y\"", replace: "\"period\": \"25 years\"",
              path: "$.schedules[0].period", message: "ISO 8601"),
    BadConfig(file: "retention.json", find: "\"id\": \"cfr-312-62\", \"data_class\": \"clinical_trial_record\", \"jurisdiction\": \"US\", \"period\": \"P2Y\", \"trigger\": \"marketing_approval\"",
              replace: "\"id\": \"cfr-312-62\", \"data_class\": \"clinical_trial_record\", \"jurisdiction\": \"*\", \"period\": \"P2Y\", \"trigger\": \"last_marketing_approval\"",
              path: "$.schedules[2]", message: "duplicates schedule \"ich-e6-essential\""),
    BadConfig(file: "retention.json", find: "\"jurisdiction\": \"US\", \"period\": \"P6Y\"", replace: "\"jurisdiction\": \"USA\", \"period\": \"P6Y\"",
              path: "$.schedules[3].jurisdiction", message: "not an ISO 3166-1"),
    BadConfig(file: "retention.json", find: "\"id\": \"ich-e6-essential\"", replace: "\"id\": \"eu-ctr-tmf\"",
              path: "$.schedules[1].id", message: "used twice"),
    BadConfig(file: "purposes.json", find: "\"legal_basis\": \"public_task\", \"art9_condition\": \"j\"",
              replace: "\"legal_basis\": \"public_task\", \"art9_condition\": \"a\"",
              path: "$.purposes.primary_research.art9_condition", message: "contradicts"),
    BadConfig(file: "purposes.json", find: "\"legal_basis\": \"legitimate_interests\"", replace: "\"legal_basis\": \"interest\"",
              path: "$.purposes.platform_operations.legal_basis", message: "expected one of"),
    BadConfig(file: "actions.json", find: "\"metadata\": [\"read_metadata\"]", replace: "\"metadata\": [\"read_metadata\", \"read\"]",
              path: "$.metadata[1]", message: "\"read\" is also listed under use"),
    BadConfig(file: "actions.json", find: "\"metadata\": [\"read_metadata\"]", replace: "\"metadata\": [\"read_metadata\", \"purge\"]",
              path: "$.metadata[1]", message: "\"purge\" always deletes"),
    BadConfig(file: "actions.json", find: "\"use\": [", replace: "\"uses\": [",
              path: "$.uses", message: "unknown key"),
    BadConfig(file: "actions.json", find: "\"delete\": [\"delete\"]", replace: "\"delete\": [\"delete\", \"\"]",
              path: "$.delete[1]", message: "non-empty string"),
    BadConfig(file: "compute.json", find: "sha256:3f1e", replace: "sha256:3F1E",
              path: "$.images[0].digest", message: "lowercase hex"),
    BadConfig(file: "compute.json", find: "\"gpu_model\": \"custos.io/gpu-model\"", replace: "\"gpu\": \"x\"",
              path: "$.labels.gpu", message: "unknown key"),
]

@Test(arguments: badConfigs)
func badConfigurationIsRejectedWithFileAndField(_ bad: BadConfig) throws {
    var files = Fixtures.exampleFiles()
    let text = String(decoding: files[bad.file]!, as: UTF8.self)
    #expect(text.contains(bad.find), "fixture text to replace is present")
    files[bad.file] = Array(text.replacingOccurrences(bad.find, with: bad.replace).utf8)
    do {
        _ = try GuardrailConfig.parse(files: files)
        Issue.record("configuration was accepted")
    } catch {
        #expect(error.file == "guardrails/" + bad.file)
        #expect(error.path == bad.path)
        #expect(error.message.contains(bad.message), "\(error)")
    }
}

@Test func presentFilesRequireRegionsAndPurposes() {
    var files = Fixtures.exampleFiles()
    files["purposes.json"] = nil
    #expect(throws: GuardrailConfigError(file: "guardrails/purposes.json", path: "$",
        message: "missing: once any guardrail file is present, regions.json and purposes.json are required")) {
        try GuardrailConfig.parse(files: files)
    }
}

@Test func invalidJSONNamesTheFile() {
    var files = Fixtures.exampleFiles()
    files["compute.json"] = Array("{\"a\": 1, \"a\": 2}".utf8)
    do { _ = try GuardrailConfig.parse(files: files); Issue.record("accepted") } catch {
        #expect(error.file == "guardrails/compute.json")
        #expect(error.message.hasPrefix("not valid JSON"))
    }
}

extension String {
    func replacingOccurrences(_ a: String, with b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound]; out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

/// What an action does with the data decides the guardrails it meets: without actions.json
/// only the built-in deletes delete and every other action uses the data; with it, a metadata
/// read meets study isolation only, and the built-in deletes stay deletes.
@Test(arguments: [
    // (actions.json or nil, action, kind)
    (nil, "read_metadata", ActionKind.use), (nil, "delete", .delete), (nil, "purge", .delete), (nil, "read", .use),
    (#"{"metadata": ["read_metadata"]}"#, "read_metadata", .metadata),
    (#"{"metadata": ["read_metadata"]}"#, "read_metadat", .use),
    (#"{"metadata": ["read_metadata"]}"#, "erase", .delete),
    (#"{"delete": ["shred"]}"#, "shred", .delete),
    (#"{"use": ["read"]}"#, "read", .use),
] as [(String?, String, ActionKind)])
func actionsMapToTheirKind(_ file: String?, _ action: String, _ kind: ActionKind) throws {
    var files = Fixtures.exampleFiles()
    files["actions.json"] = file.map { Array($0.utf8) }
    let config = try GuardrailConfig.parse(files: files)
    #expect(GuardrailRequest.operation(forAction: action, actions: config.actions) == kind)
}

@Test func aMetadataReadMeetsIsolationOnlyAndADeleteStillMeetsRetention() {
    let eu = Fixtures.oncDE
    let meta = GuardrailRequest(operation: .metadata, region: "us-west-2", purpose: nil, principalStudies: ["ONC-301"], now: Fixtures.now)
    #expect(Guardrails.evaluate([eu], request: meta, config: Fixtures.config, consent: .empty).allowed)
    let use = GuardrailRequest(operation: .use, region: "us-west-2", purpose: nil, principalStudies: ["ONC-301"], now: Fixtures.now)
    #expect(!Guardrails.evaluate([eu], request: use, config: Fixtures.config, consent: .empty).allowed)
    let otherStudy = GuardrailRequest(operation: .metadata, principalStudies: ["CARD-201"], now: Fixtures.now)
    #expect(Guardrails.evaluate([eu], request: otherStudy, config: Fixtures.config, consent: .empty).denials.map(\.code)
            == [.isolationStudyMismatch])
}
