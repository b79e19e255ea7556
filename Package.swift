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

let package = Package(
    name: "leetcode-claim",
    products: [.executable(name: "leetcode-claim", targets: ["leetcode-claim"])],
    targets: [
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .target(name: "ClaimCore", dependencies: ["CSQLite", "COpenSSL"], swiftSettings: lean),
        .executableTarget(
            name: "leetcode-claim", dependencies: ["ClaimCore"], swiftSettings: lean,
            // The static runtime's backtracer looks for its helper binary at start-up through /proc/self/exe and
            // aborts when /proc is absent (an empty chroot). main.swift answers that lookup with "none".
            linkerSettings: [.unsafeFlags(["-Xlinker", "--wrap=swift_copyAuxiliaryExecutablePath"])]),
        .testTarget(
            name: "ClaimCoreTests", dependencies: ["ClaimCore", "COpenSSL"], exclude: ["jwt_vectors.py"],
            swiftSettings: strict),
    ]
)
