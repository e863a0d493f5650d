// swift-tools-version:6.0
// Custos: a policy decision point for clinical and patient data.
//
// Layers, dependencies pointing down only:
//   custos (CLI)            command line, wires everything together
//   CustosGateway           the HTTP front door: translates callers' HTTP onto the dispatcher's methods
//                           (the scheduler extender onto place's typed form: Guardrails' PlacementQuery)
//   SchedulerNodes          Kubernetes node objects onto the node inventory (k8s-node-sync)
//   CustosServer            JSON-RPC 2.0 over a Unix socket
//   PolicyBundle            signed policy bundles: the archive, the manifest, approvals (N of M)
//   FleetStore              consent, holds and checkpoint witnessing shared through PostgreSQL
//   AuditLog                append-only log, RFC 6962 Merkle tree, signed checkpoints
//   Guardrails              residency, consent, retention, isolation, compute
//   Cedar                   the Cedar language: syntax, values, evaluation, formats
//   CustosJSON              jansson-backed JSON reading, a fast writer
//   CivilCalendar, ReadMostly   date arithmetic; values read per request, replaced rarely
//   CustosVersion           the product's version string
//   CustosLog               the daemon's log lines (JSON or text)
//   CustosSystemd           socket activation and readiness notification (libsystemd)
//   Metrics                 counters and histograms on atomics, Prometheus text format
//   CJansson, COpenSSL, CSystemd, CMicroHTTPD, CLibPQ   Debian's C libraries
//   CFileSync               sync_file_range from glibc (the Glibc module lacks it)
import PackageDescription

let package = Package(
    name: "Custos",
    products: [
        .executable(name: "custos", targets: ["custos"]),
        .library(name: "Cedar", targets: ["Cedar"]),
    ],
    targets: [
        .systemLibrary(name: "CJansson", pkgConfig: "jansson", providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CFileSync"),
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "Metrics"),
        .target(name: "CustosJSON", dependencies: ["CJansson"], linkerSettings: [.linkedLibrary("m")]),
        .target(name: "CivilCalendar"),
        .target(name: "ReadMostly"),
        .target(name: "CustosVersion"),
        .target(name: "CustosLog", dependencies: ["CustosJSON", "CivilCalendar"]),
        .target(name: "CustosSystemd", dependencies: ["CSystemd"]),
        .target(name: "Cedar", dependencies: ["CustosJSON", "CivilCalendar"]),
        .target(name: "AuditLog", dependencies: ["COpenSSL", "CFileSync", "CustosJSON", "CivilCalendar", "Metrics"]),
        .target(name: "PolicyBundle", dependencies: ["AuditLog", "CustosJSON"]),
        .target(name: "CustosServer", dependencies: ["CustosJSON"]),
        .target(name: "CustosGateway", dependencies: ["CMicroHTTPD", "CustosServer", "CustosJSON", "Metrics", "Cedar", "Guardrails"]),
        .target(name: "Guardrails", dependencies: ["Cedar", "CustosJSON", "CivilCalendar", "ReadMostly"]),
        .target(name: "Conformance", dependencies: ["CustosJSON"]),
        // How a Kubernetes node becomes an inventory node (`custos k8s-node-sync`); the extender's
        // filter and prioritize are the front door's (CustosGateway).
        .target(name: "SchedulerNodes", dependencies: ["CustosJSON"]),
        .target(name: "FleetStore", dependencies: ["CLibPQ", "Guardrails", "CustosJSON", "Cedar", "ReadMostly"]),
        .target(name: "CustosDaemon", dependencies: ["Cedar", "Guardrails", "AuditLog", "CustosServer", "CustosJSON", "CivilCalendar", "ReadMostly", "CustosVersion", "CustosGateway", "Metrics", "CustosLog", "FleetStore", "PolicyBundle"]),
        // The Swift runtime and Foundation are linked into the binary, so it runs where the
        // toolchain is not installed; Debian's C libraries stay shared (docs/operations.md,
        // "Packages"). Only the executable: `--static-swift-stdlib` would apply to the tests too,
        // and Swift Testing has no static library on Linux. The modules were compiled against
        // the shared runtime, whose autolink entries name fewer libraries than the static
        // archives need, hence the list (Swift 6.3's static Foundation; DeploymentTests checks
        // that the binary runs with the toolchain hidden).
        .executableTarget(name: "custos", dependencies: ["Cedar", "CustosJSON", "CustosServer", "AuditLog", "Guardrails", "CustosDaemon", "Conformance", "CustosVersion", "CustosGateway", "Metrics", "CustosLog", "CustosSystemd", "FleetStore", "SchedulerNodes", "PolicyBundle"],
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-lCoreFoundation", "-l_FoundationCollections", "-l_FoundationCShims", "-l_FoundationICU", "-lFoundationInternationalization", "-lFoundationEssentials", "-lswiftSynchronization", "-lswift_StringProcessing", "-lswift_RegexParser", "-lstdc++"])]),
        // Shared by the test targets: waiting for a condition (`eventually`), never for a fixed time;
        // scratch folders that are removed when the test process exits (`Scratch`).
        .target(name: "CustosTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CustosJSONTests", dependencies: ["CustosJSON"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "CustosGatewayTests", dependencies: ["CustosGateway", "CustosServer", "CustosJSON", "CustosTestSupport", "Guardrails"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "CivilCalendarTests", dependencies: ["CivilCalendar"]),
        .testTarget(name: "ReadMostlyTests", dependencies: ["ReadMostly"]),
        .testTarget(name: "CedarTests", dependencies: ["Cedar", "CustosJSON", "CustosTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AuditLogTests", dependencies: ["AuditLog", "CustosJSON", "CustosTestSupport"]),
        .testTarget(name: "PolicyBundleTests", dependencies: ["PolicyBundle", "AuditLog", "CustosJSON", "CustosTestSupport"]),
        .testTarget(name: "CustosServerTests", dependencies: ["CustosServer", "CustosJSON", "CustosTestSupport"]),
        .testTarget(name: "GuardrailsTests", dependencies: ["Guardrails", "Cedar", "CustosJSON", "CustosTestSupport"]),
        .testTarget(name: "ConformanceTests", dependencies: ["Conformance", "CustosJSON", "CustosTestSupport"]),
        .testTarget(name: "CustosDaemonTests", dependencies: ["CustosDaemon", "CustosServer", "Cedar", "CustosJSON", "CustosVersion", "CustosLog",
                                                             "CustosTestSupport"]),
        .testTarget(name: "CustosLogTests", dependencies: ["CustosLog", "CustosJSON"]),
        .testTarget(name: "SchedulerExtenderTests", dependencies: ["SchedulerNodes", "CustosGateway", "CustosDaemon", "CustosServer", "CustosJSON", "Guardrails"],
                    exclude: ["Fixtures"]),
        // Start the real `custos` binary (built first by `make test`) and talk to it.
        .testTarget(name: "IntegrationTests", dependencies: ["CustosJSON", "CustosServer", "CustosTestSupport", "CustosVersion",
                                                            "PolicyBundle", "AuditLog"]),
        // Rules every test follows (no time bounds, no fixed sleeps), checked over Tests/.
        .testTarget(name: "RepositoryTests"),
    ]
)
