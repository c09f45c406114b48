@testable import AtriumCore
import AtriumTesting
import Foundation
import NIOCore
import PostgresNIO
import Testing

/// Request connections left unused past the pool's idle timeout are closed (their
/// backends end); one in use is never taken, however long it is held.
@Suite("Idle request connections")
struct RequestConnectionIdleTests {
    @Test(.timeLimit(.minutes(5))) func aConnectionIdlePastItsTimeoutIsClosedAndOneInUseIsNot() async throws {
        let db = try await TestDatabase.create()
        let pipelined = PipelinedBeginTests()
        try await pipelined.withPool(db, perLoop: 1, idleTimeout: .milliseconds(200)) { pool in
            // Held for three timeouts while in use, and still answering.
            let (first, connection) = try await pool.withConnection { pooled in
                try await Task.sleep(for: .milliseconds(600))
                return (try await pipelined.backendPID(pooled.connection), pooled.connection)
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while !connection.isClosed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(connection.isClosed, "an idle connection outlived its timeout")
            // Its backend ends too (a moment after the client side closes; under the full
            // suite's load that moment once outlasted the 10 s above, so it has its own minute).
            var backends: Int?
            let backendDeadline = ContinuousClock.now + .seconds(60)
            try await withPostgresConnection(db.superuser, logger: TestDatabase.logger) { superuser in
                while backends != 0, ContinuousClock.now < backendDeadline {
                    backends = try await superuser.query("SELECT count(*)::int FROM pg_stat_activity WHERE pid = \(first)", logger: TestDatabase.logger)
                        .collect().first?.decode(Int.self)
                    if backends != 0 { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            #expect(backends == 0, "the closed connection's backend still runs a minute later")
            // The next lease makes a new one, and the pool's one slot was given back.
            let second = try await pool.withConnection { pooled in try await pipelined.backendPID(pooled.connection) }
            #expect(second != first)
            let third = try await pool.withConnection { pooled in try await pipelined.backendPID(pooled.connection) }
            #expect(third == second, "reused while fresh")
        }
    }
}
