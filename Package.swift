// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Atrium",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "atrium", targets: ["Atrium"]),
        .library(name: "AtriumCore", targets: ["AtriumCore"]),
        // What a module's tests are written with: a throwaway database, the application
        // `atrium serve` runs, login and request helpers, the module conformance checks.
        .library(name: "AtriumTesting", targets: ["AtriumTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // The request path's pipelining (Core/Database/PipelinedBegin.swift) relies on how
        // this driver frames its writes; PipelinedBeginTests fail loudly when that changes.
        // A new minor version is taken on purpose, with that suite run against it.
        .package(url: "https://github.com/vapor/postgres-nio.git", .upToNextMinor(from: "1.33.2")),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // Turns the `.sql` files of a target into Swift string constants, so the binary
        // carries its migrations and never depends on where it is run from.
        .executableTarget(name: "EmbedSQL", path: "Plugins/EmbedSQLTool"),
        .plugin(name: "EmbedSQLPlugin", capability: .buildTool(), dependencies: ["EmbedSQL"], path: "Plugins/EmbedSQLPlugin"),

        // The reference Argon2 library (Debian's libargon2-dev), for password hashing.
        .systemLibrary(name: "CArgon2", path: "System/CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        // libcurl with OpenSSL (Debian's libcurl4-openssl-dev): SMTP, OIDC token exchange, webhooks.
        .systemLibrary(name: "CCurl", path: "System/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        .target(
            name: "AtriumCore",
            dependencies: [
                "CArgon2",
                "CCurl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Core",
            swiftSettings: swiftSettings,
            plugins: ["EmbedSQLPlugin"]
        ),
        // Feature modules: each a folder under Modules/, using only AtriumCore's public API.
        .target(
            name: "AtriumSales",
            dependencies: [
                "AtriumCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Modules/Sales",
            exclude: ["migrations"],
            swiftSettings: swiftSettings,
            plugins: ["EmbedSQLPlugin"]
        ),
        .target(
            name: "AtriumPortfolio",
            dependencies: [
                "AtriumCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Modules/Portfolio",
            exclude: ["migrations"],
            swiftSettings: swiftSettings,
            plugins: ["EmbedSQLPlugin"]
        ),
        .target(
            name: "AtriumCrypto",
            dependencies: [
                "AtriumCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Modules/Crypto",
            exclude: ["migrations"],
            swiftSettings: swiftSettings,
            plugins: ["EmbedSQLPlugin"]
        ),
        .executableTarget(
            name: "Atrium",
            dependencies: [
                "AtriumCore",
                "AtriumSales",
                "AtriumPortfolio",
                "AtriumCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "admin",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AtriumTesting",
            dependencies: [
                "AtriumCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Tests/AtriumTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumCoreTests",
            dependencies: [
                "AtriumCore",
                "AtriumTesting",
                "AtriumSales",
                "AtriumPortfolio",
                "AtriumCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
            ],
            path: "Tests/AtriumCoreTests",
            swiftSettings: swiftSettings
        ),
        // One test target per module, written with AtriumTesting.
        .testTarget(
            name: "AtriumSalesTests",
            dependencies: [
                "AtriumCore",
                "AtriumSales",
                "AtriumTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Tests/AtriumSalesTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumPortfolioTests",
            dependencies: [
                "AtriumCore",
                "AtriumPortfolio",
                "AtriumTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/AtriumPortfolioTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumCryptoTests",
            dependencies: [
                "AtriumCore",
                "AtriumCrypto",
                "AtriumTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/AtriumCryptoTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AtriumEndToEndTests",
            dependencies: [
                "AtriumCore",
                "AtriumTesting",
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/AtriumEndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
