// swift-tools-version: 6.1
import PackageDescription

/// House settings (../shared/STYLE.md): Swift 6 mode plus the upcoming features hummingbird uses.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Waybill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "waybill", targets: ["waybill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // Layer 0: C wrappers. Each is imported by exactly one Swift target.
        .systemLibrary(name: "CZint", providers: [.apt(["libzint-dev"])]),
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CRsvg", pkgConfig: "librsvg-2.0", providers: [.apt(["librsvg2-dev", "libcairo2-dev"])]),
        .systemLibrary(name: "CPango", pkgConfig: "pangocairo", providers: [.apt(["libpango1.0-dev", "libharfbuzz-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPoppler", pkgConfig: "poppler-glib", providers: [.apt(["libpoppler-glib-dev"])]),
        .systemLibrary(name: "CZBar", pkgConfig: "zbar", providers: [.apt(["libzbar-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CGMime", pkgConfig: "gmime-3.0", providers: [.apt(["libgmime-3.0-dev"])]),
        .systemLibrary(name: "CXattr"),

        // Layer 1: the pure model.
        .target(
            name: "WaybillCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // Layer 2: one capability each.
        .target(
            name: "WaybillStore",
            dependencies: ["WaybillCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WaybillSheets",
            dependencies: [
                "WaybillCore", "CRsvg", "CPango", "CZint", "CQRencode", "CZlib", .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WaybillScan",
            dependencies: ["WaybillCore", "CPoppler", "CZBar", "CTurboJPEG", "CPNG", "CTIFF"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WaybillSMTP",
            dependencies: [
                "WaybillCore", "CXattr",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WaybillDelivery",
            dependencies: [
                "WaybillCore",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WaybillMIME",
            dependencies: ["WaybillCore", "CGMime"],
            swiftSettings: swiftSettings
        ),

        // Layer 3: the one ingest pipeline that `serve`, `ingest` and the web app use.
        .target(
            name: "WaybillIngest",
            dependencies: [
                "WaybillCore", "WaybillStore", "WaybillScan", "WaybillMIME", "WaybillDelivery", "WaybillSMTP",
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Layer 3: the web app and its JSON API, on the same store, sheets and pipeline.
        .target(
            name: "WaybillWeb",
            dependencies: [
                "WaybillCore", "WaybillSheets", "WaybillScan",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Layer 4: composition. The CLI lives in a library so tests can reach its parsing.
        .target(
            name: "WaybillCLI",
            dependencies: [
                "WaybillCore", "WaybillStore", "WaybillSheets", "WaybillScan", "WaybillDelivery", "WaybillSMTP", "WaybillIngest",
                "WaybillWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "waybill", dependencies: ["WaybillCLI"], swiftSettings: swiftSettings),
        // libFuzzer target for the decoder's entry points (a replayer in ordinary builds).
        .executableTarget(
            name: "WaybillFuzz", dependencies: ["WaybillScan", "WaybillCore"], path: "Fuzz/WaybillFuzz",
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "WaybillCoreTests", dependencies: ["WaybillCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WaybillStoreTests", dependencies: ["WaybillStore", "WaybillCore", "WaybillDelivery"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WaybillSheetsTests",
            dependencies: ["WaybillSheets", "WaybillScan", "WaybillCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "WaybillSMTPTests", dependencies: ["WaybillSMTP", "WaybillCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WaybillDeliveryTests", dependencies: ["WaybillDelivery", "WaybillCore"], exclude: ["Peers"],
            swiftSettings: swiftSettings),
        .testTarget(name: "WaybillMIMETests", dependencies: ["WaybillMIME", "WaybillCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "WaybillIngestTests",
            dependencies: ["WaybillIngest", "WaybillCore", "WaybillStore", "WaybillScan", "WaybillSheets", "WaybillSMTP", "WaybillDelivery"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WaybillWebTests",
            dependencies: [
                "WaybillWeb", "WaybillCore", "WaybillStore", "WaybillScan", "WaybillSheets", "WaybillIngest", "WaybillDelivery",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WaybillCLITests",
            dependencies: ["WaybillCLI", "WaybillCore", "WaybillScan", "waybill", "WaybillFuzz"],
            swiftSettings: swiftSettings
        ),
    ]
)
