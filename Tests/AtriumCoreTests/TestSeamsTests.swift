import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Synchronization
import Testing

/// A module that tells the time and a setting, from a route and from a job.
struct ClockModule: AtriumModule {
    var id: String { "clocky" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    func migrations() throws -> [Migration] { [] }

    struct Now: Codable, Sendable {
        var now: Date
        var greeting: String?
    }

    /// What the job saw, for the test to read.
    static let stamped = Mutex<[Now]>([])

    var jobs: [JobDefinition] {
        [JobDefinition(kind: "clocky.stamp") { context in
            Self.stamped.withLock { $0.append(Now(now: context.module.clock.now, greeting: context.module.settings.string("greeting"))) }
        }]
    }

    func routes(_ routes: ModuleRoutes) {
        let context = routes.context
        routes.on(.get, "now", summary: "The module's time", access: .anyCaller, response: Now.self) { _ in
            Now(now: context.clock.now, greeting: context.settings.string("greeting"))
        }
    }
}

/// What a module's tests get from AtriumTesting besides a database and an application:
/// a clock they move, settings of their own, and a job handler run alone.
@Suite struct TestSeamsTests {
    static let start = Date(timeIntervalSince1970: 1_893_456_000)  // 2030-01-01T00:00:00Z

    @Test func routesReadTheTestsClockAndSettings() async throws {
        let db = try await TestDatabase.create(modules: [ClockModule()])
        let tenant = try await db.createTenant("acme", modules: ["clocky"])
        _ = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let clock = MovableClock(Self.start)
        try await withTestApplication(db, modules: [ClockModule()], clock: clock, environment: ["ATRIUM_CLOCKY_GREETING": "hello"]) { client, _ in
            let token = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let first = try await client.send(.get, "/v1/tenants/acme/clocky/now", token: token)
            #expect(json(first)["now"]?.string == "2030-01-01T00:00:00Z")
            #expect(json(first)["greeting"]?.string == "hello")
            clock.advance(by: 3600)
            let later = try await client.send(.get, "/v1/tenants/acme/clocky/now", token: token)
            #expect(json(later)["now"]?.string == "2030-01-01T01:00:00Z")
        }
    }

    @Test func aJobHandlerRunsAloneWithTheTestsClockAndSettings() async throws {
        let db = try await TestDatabase.create(modules: [ClockModule()])
        let tenant = try await db.createTenant("acme", modules: ["clocky"])
        try await db.withApp { database in
            try await runJob(
                "clocky.stamp", of: ClockModule(), tenantID: tenant.id, payload: [String: String](), database: database, clock: MovableClock(Self.start),
                environment: ["ATRIUM_CLOCKY_GREETING": "from a job"])
        }
        let stamped = ClockModule.stamped.withLock { $0 }
        #expect(stamped.count == 1)
        #expect(stamped.first?.now == Self.start)
        #expect(stamped.first?.greeting == "from a job")
        await #expect(throws: ConfigurationError.self) {
            try await db.withApp { database in
                try await runJob("clocky.nothing", of: ClockModule(), tenantID: tenant.id, payload: [String: String](), database: database)
            }
        }
    }
}
