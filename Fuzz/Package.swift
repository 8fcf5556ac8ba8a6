// swift-tools-version:6.1
// libFuzzer targets for p2p's parsers. A package of its own so that the root package's
// build is untouched; it depends on the root package by path.
//
// Build and run them with scripts/fuzz.sh. By hand:
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address
//   Fuzz/.build/release/FuzzFrame -max_total_time=60 Fuzz/Corpus/FuzzFrame
import PackageDescription

let fuzzTargets = [
    "FuzzFrame",
    "FuzzAnnouncement",
    "FuzzTransferMessage",
    "FuzzManifest",
    "FuzzChunkBitmap",
    "FuzzFileName",
    "FuzzCollectionManifest",
]

let package = Package(
    name: "p2p-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "p2p", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "4.5.2"..<"5.0.0"),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(
            name: "FuzzSupport",
            dependencies: [
                "CFuzzDriver",
                .product(name: "P2P", package: "p2p"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
        + fuzzTargets.map { name in
            .executableTarget(
                name: name,
                dependencies: [
                    "FuzzSupport",
                    .product(name: "P2P", package: "p2p"),
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "Crypto", package: "swift-crypto"),
                ]
            )
        }
)
