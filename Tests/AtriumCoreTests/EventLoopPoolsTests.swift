@testable import AtriumCore
import AtriumTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOPosix
import PostgresNIO
import Testing

/// A served request stays on one thread: its connection's task runs on the channel's event
/// loop (`LoopBoundChildChannel`), and the database connection it takes comes from that
/// loop's pool (`Database.pooled`).
@Suite("Event-loop pools")
struct EventLoopPoolsTests {
    @Test func onAnEventLoopTheConnectionComesFromThatLoopsPool() async throws {
        let db = try await TestDatabase.create()
        let database = try Database.pooled(db.app, size: 4, logger: TestDatabase.logger)
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        #expect(database.loopPools.count == loops.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in database.clients { group.addTask { await client.run() } }
            for loop in loops {
                let (pooled, onLoop) = try await EventLoopTaskExecutor.run(on: loop) {
                    let client = database.client
                    let pooled = database.loopPools.contains { $0.eventLoop === loop && $0.client === client }
                    let onLoop = try await client.withConnection { connection in
                        _ = try await connection.query("SELECT 1", logger: TestDatabase.logger).collect()
                        return connection.eventLoop === loop
                    }
                    return (pooled, onLoop)
                }
                #expect(pooled)
                #expect(onLoop)
            }
            // Off the loops (a job, the CLI), the shared pool.
            #expect(database.client === database.shared)
            group.cancelAll()
        }
    }

    /// Requests that hold every connection of their loop's pool and then check the shared
    /// rate limiter (a second connection) finish: the limiter takes the shared pool. From
    /// the loop's own pool they would wait for each other forever.
    @Test func aSecondConnectionWhileHoldingTheLoopsPoolComesFromTheSharedPool() async throws {
        let db = try await TestDatabase.create()
        let database = try Database.pooled(db.app, size: 2, logger: TestDatabase.logger)
        let store = PostgresRateLimitStore(database: database, logger: TestDatabase.logger)
        let policy = Plan.RateLimit(name: "hourly", limit: 100, windowSeconds: 3600)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            for client in database.clients { group.addTask { await client.run(); return false } }
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { requests in
                    for request in 0..<6 {
                        requests.addTask {
                            try await EventLoopTaskExecutor.run(on: loop) {
                                try await database.client.withConnection { _ in
                                    try await Task.sleep(for: .milliseconds(50))
                                    _ = try await store.check([RateLimitRule(key: "request-\(request)", policy: policy)], now: nil)
                                }
                            }
                        }
                    }
                    try await requests.waitForAll()
                }
                return true
            }
            group.addTask { try await Task.sleep(for: .seconds(20)); return false }
            var outcome = false
            for try await result in group {
                outcome = result
                break
            }
            group.cancelAll()
            return outcome
        }
        #expect(finished)
    }

    @Test func aServedRequestRunsOnItsConnectionsEventLoop() async throws {
        let router = Router()
        router.get("loop") { _, _ in MultiThreadedEventLoopGroup.currentEventLoop == nil ? "elsewhere" : "on its loop" }
        let app = Application(router: router, server: .loopBoundHTTP1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            for _ in 0..<3 {
                let response = try await client.execute(uri: "/loop", method: .get)
                #expect(String(buffer: response.body) == "on its loop")
            }
        }
    }
}
