import AtriumCore
import AtriumCrypto
import AtriumPortfolio
import AtriumSales
import Foundation

/// The feature modules compiled into this binary, in no particular order (the registry
/// orders them by dependency). `ATRIUM_BENCH_MODULE=1` adds `BenchModule`, which only
/// `bench/metering.sh` uses.
let installedModules: [any AtriumModule] =
    [SalesModule(), PortfolioModule(), CryptoModule()] + (ProcessInfo.processInfo.environment["ATRIUM_BENCH_MODULE"] == "1" ? [BenchModule()] : [])
