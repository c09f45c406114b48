import AtriumCore
import AtriumCrypto
import AtriumPortfolio
import AtriumSales

/// The feature modules compiled into this binary, in no particular order (the registry
/// orders them by dependency).
let installedModules: [any AtriumModule] = [SalesModule(), PortfolioModule(), CryptoModule()]
