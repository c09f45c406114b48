public import Logging
public import ServiceLifecycle
import Synchronization

/// Names the services of a stopping process that do not end.
///
/// A graceful stop that outlasts its drain limit escalates to cancellation; a service
/// that ignores cancellation (a wait nobody resumes) then holds the process forever,
/// idle, with nothing in its log to say which one. Once seen on a server after a long
/// bench: port closed, process alive. Each service `watched` logs its end by name, and
/// `overdue` is told the names still running when the stop has taken `limit`, so the
/// process can say what hung and exit instead of waiting for someone to kill it.
public final class ServiceStopWatch: Sendable {
    private let running = Mutex<[Int: String]>([:])
    private let limit: Duration
    private let logger: Logger
    private let overdue: @Sendable ([String]) -> Void

    /// - Parameters:
    ///   - limit: how long a stop may take from its start, cancellation included.
    ///   - overdue: told the names of the services still running once `limit` has passed
    ///     (a server logs them and exits).
    public init(limit: Duration, logger: Logger, overdue: @escaping @Sendable ([String]) -> Void) {
        self.limit = limit
        self.logger = logger
        self.overdue = overdue
    }

    /// The services as given, each logging its end, and last the watch itself: a service
    /// group tells the last service first when a stop begins, so the clock starts then.
    public func watched(_ services: [any Service]) -> [any Service] {
        services.enumerated().map { index, service in
            WatchedService(index: index, name: String(describing: type(of: service)), service: service, watch: self)
        } + [StopClock(watch: self)]
    }

    /// Runs `group` (made of `watched` services). Until its run returns the group counts as
    /// running too: a group whose services all ended but which never returns is named.
    public func run(_ group: ServiceGroup) async throws {
        started(Int.max, name: "ServiceGroup")
        defer { running.withLock { _ = $0.removeValue(forKey: Int.max) } }
        try await group.run()
    }

    /// The names of the watched services that have not ended, in the order given.
    public var stillRunning: [String] {
        running.withLock { running in running.sorted { $0.key < $1.key }.map(\.value) }
    }

    fileprivate func started(_ index: Int, name: String) {
        running.withLock { $0[index] = name }
    }

    fileprivate func ended(_ index: Int, name: String, error: (any Error)?) {
        running.withLock { _ = $0.removeValue(forKey: index) }
        var metadata: Logger.Metadata = ["service": "\(name)"]
        if let error { metadata["error"] = "\(String(reflecting: error))" }
        logger.info("service stopped", metadata: metadata)
    }

    /// Starts the stop's clock, outside the group's tasks: cancelling the group must not
    /// cancel the one thing that reports what cancellation failed to end.
    fileprivate func stopBegan() {
        let limit = limit
        Task.detached { [self] in
            try? await Task.sleep(for: limit)
            let names = stillRunning
            if !names.isEmpty { overdue(names) }
        }
    }
}

private struct WatchedService: Service, CustomStringConvertible {
    let index: Int
    let name: String
    let service: any Service
    let watch: ServiceStopWatch

    var description: String { name }

    func run() async throws {
        watch.started(index, name: name)
        do {
            try await service.run()
            watch.ended(index, name: name, error: nil)
        } catch {
            watch.ended(index, name: name, error: error)
            throw error
        }
    }
}

/// Waits for the stop (or the group's cancellation), starts the watch's clock, and ends.
private struct StopClock: Service, CustomStringConvertible {
    let watch: ServiceStopWatch

    var description: String { "ServiceStopWatch" }

    func run() async throws {
        try? await gracefulShutdown()
        watch.stopBegan()
    }
}
