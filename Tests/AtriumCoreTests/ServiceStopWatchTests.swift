import AtriumCore
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Service stop watch: a stop that outlasts its limit names the services that did not end")
struct ServiceStopWatchTests {
    @Test func aServiceThatIgnoresCancellationIsNamedAndOnlyIt() async throws {
        let stubborn = Stubborn()
        let overdue = Overdue()
        let watch = ServiceStopWatch(limit: .milliseconds(400), logger: Logger(label: "test")) { overdue.record($0) }
        var configuration = ServiceGroupConfiguration(
            services: watch.watched([Polite(), stubborn]).map { .init(service: $0) }, logger: Logger(label: "test"))
        configuration.maximumGracefulShutdownDuration = .milliseconds(100)
        let group = ServiceGroup(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await watch.run(group) }
            try await Task.sleep(for: .milliseconds(100))
            #expect(watch.stillRunning == ["Polite", "Stubborn", "ServiceGroup"])
            await group.triggerGracefulShutdown()
            try await overdue.wait(upTo: .seconds(10))
            #expect(overdue.names == [["Stubborn", "ServiceGroup"]])
            stubborn.release()
            try await tasks.waitForAll()
        }
        #expect(watch.stillRunning.isEmpty)
    }

    @Test func aStopThatEndsInTimeIsNotReported() async throws {
        let overdue = Overdue()
        let watch = ServiceStopWatch(limit: .milliseconds(200), logger: Logger(label: "test")) { overdue.record($0) }
        let group = ServiceGroup(configuration: .init(services: watch.watched([Polite(), Polite()]).map { .init(service: $0) }, logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await watch.run(group) }
            try await Task.sleep(for: .milliseconds(50))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Past the limit: the clock ran out with nothing left running.
        try await Task.sleep(for: .milliseconds(400))
        #expect(overdue.names.isEmpty)
        #expect(watch.stillRunning.isEmpty)
    }
}

/// Ends when told to stop.
private struct Polite: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}

/// Waits for `release` whatever happens: neither a stop nor cancellation ends it.
private final class Stubborn: Service, Sendable {
    private let state = Mutex<(released: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func run() async throws {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.released { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func release() {
        let waiter = state.withLock { state in
            state.released = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}

/// What the watch reported, and a way to wait for its first report.
private final class Overdue: Sendable {
    private let reports = Mutex<[[String]]>([])

    var names: [[String]] { reports.withLock { $0 } }

    func record(_ names: [String]) {
        reports.withLock { $0.append(names) }
    }

    func wait(upTo limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while names.isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
