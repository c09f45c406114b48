import Logging
import ServiceLifecycle
import UnixSignals

/// Runs long-lived services until SIGTERM or SIGINT.
///
/// Services stop in reverse order: the HTTP server (listed last) stops accepting and
/// drains first, then workers finish their jobs, then the pool closes. Draining is
/// bounded so a stuck request or job cannot hold the process forever.
enum ServiceRunner {
    static let drainLimit: Duration = .seconds(30)

    static func run(_ services: [any Service], logger: Logger) async throws {
        var configuration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = drainLimit
        try await ServiceGroup(configuration: configuration).run()
    }
}
