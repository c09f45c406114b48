import AtriumCore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs long-lived services until SIGTERM or SIGINT.
///
/// Services stop in reverse order: the HTTP server (listed last) stops accepting and
/// drains first, then workers finish their jobs, then the pool closes. Draining is
/// bounded so a stuck request or job cannot hold the process forever: after
/// `drainLimit` the services are cancelled, and a service still running
/// `cancellationLimit` later is named in the log and the process exits with status 1.
enum ServiceRunner {
    static let drainLimit: Duration = .seconds(30)
    static let cancellationLimit: Duration = .seconds(15)

    static func run(_ services: [any Service], logger: Logger) async throws {
        let watch = ServiceStopWatch(limit: drainLimit + cancellationLimit, logger: logger) { names in
            logger.critical("stop did not finish; exiting with these services still running", metadata: ["services": "\(names)"])
            exit(EXIT_FAILURE)
        }
        var configuration = ServiceGroupConfiguration(
            services: watch.watched(services).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = drainLimit
        try await watch.run(ServiceGroup(configuration: configuration))
    }
}
