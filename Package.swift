// swift-tools-version:6.0
import PackageDescription

// No package dependencies: SQLite and OpenSSL come from the system (libsqlite3-dev, libssl-dev), so a clean
// build compiles only this package and the release binary links their static archives.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
// Every module imports _StringProcessing (Regex) implicitly; we use none of it, and linking it costs 1.3 MB and
// ~2 MB of resident memory per process. `String.hasSubstring` stands in for the one thing it gave us.
let lean: [SwiftSetting] = strict + [
    .unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"])
]
// Each function in a section of its own, so that the link can place the ones a request runs together (below).
let ordered: [SwiftSetting] = lean + [.unsafeFlags(["-Xfrontend", "-function-sections"])]

let package = Package(
    name: "leetcode-claim",
    products: [.executable(name: "leetcode-claim", targets: ["leetcode-claim"])],
    targets: [
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .target(name: "ClaimCore", dependencies: ["CSQLite", "COpenSSL"], swiftSettings: ordered),
        .executableTarget(
            name: "leetcode-claim", dependencies: ["ClaimCore"], exclude: ["startup.order"], swiftSettings: ordered,
            linkerSettings: [
                .unsafeFlags([
                    // The static runtime's backtracer looks for its helper binary at start-up through /proc/self/exe
                    // and aborts when /proc is absent (an empty chroot). main.swift answers that lookup with "none".
                    "-Xlinker", "--wrap=swift_copyAuxiliaryExecutablePath",
                    // OpenSSL probes the CPU from .init in every process, with CPUID instructions that trap to the
                    // hypervisor in a VM (~50 µs); OpenSSLSetup runs the probe before OpenSSL's first use instead.
                    "-Xlinker", "--wrap=OPENSSL_cpuid_setup",
                    // lld, to place what a request runs and reads first in .text, .rodata, .data and .bss, in the
                    // order scripts/startup-order.sh recorded: a process whose binary is not in the page cache in
                    // large folios faults on a few 64 KiB windows instead of one per scattered function.
                    "-use-ld=lld",
                    "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/leetcode-claim/startup.order",
                    "-Xlinker", "--no-warn-symbol-ordering",
                ])
            ]),
        .testTarget(
            name: "ClaimCoreTests", dependencies: ["ClaimCore", "COpenSSL"], exclude: ["jwt_vectors.py"],
            swiftSettings: strict),
    ]
)
