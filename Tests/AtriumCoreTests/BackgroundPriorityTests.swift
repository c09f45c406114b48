@testable import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

/// Bulk work runs behind the request path: on a thread with a raised nice value and a
/// connection whose embedded-cluster backend has one too, while requests' connections
/// keep theirs.
@Suite("Background priority")
struct BackgroundPriorityTests {
    @Test func backgroundWorkRunsOnANicedThreadWithANicedBackend() async throws {
        let db = try await TestDatabase.create()
        let database = try Database.pooled(db.app, size: 2, embedded: try TestDatabase.cluster(), logger: TestDatabase.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in database.clients { group.addTask { await client.run() } }
            let (thread, backend) = try await database.withBackgroundConnection(logger: TestDatabase.logger) { connection in
                (ThreadPriority.callingThread, try await Self.niceness(ofBackendOf: connection))
            }
            #expect(thread == BackgroundLane.niceness)
            #expect(backend == BackgroundLane.niceness)
            // The request path's pools keep their priority.
            let request = try await database.client.withConnection { try await Self.niceness(ofBackendOf: $0) }
            #expect(request == 0)
            group.cancelAll()
        }
    }

    /// With an external database the backend's pid names no process of this machine that
    /// is the cluster's, and nothing is reniced.
    @Test func aBackendOfAnotherClusterIsLeftAlone() async throws {
        let db = try await TestDatabase.create()
        let elsewhere = BackendPriority(postmasterPIDFile: URL(fileURLWithPath: "/nonexistent/postmaster.pid"), niceness: BackgroundLane.niceness)
        let (lowered, niceness) = try await db.withApp { database in
            try await database.client.withConnection { connection in
                (await elsewhere.lower(connection, logger: TestDatabase.logger), try await Self.niceness(ofBackendOf: connection))
            }
        }
        #expect(lowered == nil)
        #expect(niceness == 0)
    }

    /// An import's rows are checked on the background thread (the job's database has a
    /// background pool, as `atrium serve` and `atrium worker` make it).
    @Test func anImportRunsOnTheBackgroundLane() async throws {
        let db = try await TestDatabase.create(modules: [PriorityProbeModule()])
        let tenant = try await db.createTenant("acme", modules: ["probe"])
        _ = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        try await withTestApplication(db, modules: [PriorityProbeModule()]) { client, _ in
            let token = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let upload = try await client.execute(
                uri: "/v1/tenants/acme/probe/imports?entity=items", method: .post,
                headers: [.authorization: "Bearer \(token)", .contentType: "text/csv"], body: ByteBuffer(string: "ref\nA-1\nA-2\n"))
            #expect(upload.status == .accepted, "\(String(buffer: upload.body))")
            let database = try Database.pooled(db.app, size: 2, embedded: try TestDatabase.cluster(), logger: TestDatabase.logger)
            let ran = try await withThrowingTaskGroup(of: Int.self) { group in
                for client in database.clients { group.addTask { await client.run(); return -1 } }
                let ran = try await JobWorker(
                    database: database, registry: try ModuleRegistry([PriorityProbeModule()]), configuration: .init(),
                    kit: .ephemeral(logger: TestDatabase.logger), logger: TestDatabase.logger
                ).runAvailableJobs()
                group.cancelAll()
                return ran
            }
            #expect(ran == 1)
            let status = try await client.send(.get, "/v1/tenants/acme/probe/imports", token: token)
            #expect(String(buffer: status.body).contains("\"rows_written\":2"), "\(String(buffer: status.body))")
        }
        #expect(PriorityProbeModule.checkedAtNiceness.load(ordering: .relaxed) == BackgroundLane.niceness)
    }

    /// A report read behind the request path (`TenantRequest.readBehindRequests`) runs on
    /// the niced thread with a niced backend, sees what the caller's `transaction` sees
    /// (this tenant, this owner) and writes nothing.
    @Test func aReadBehindRequestsRunsOnTheBackgroundLaneReadOnlyAndScoped() async throws {
        let db = try await TestDatabase.create(modules: [PriorityProbeModule()])
        let tenant = try await db.createTenant("acme", modules: ["probe"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let bob = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let other = try await db.createTenant("other", modules: ["probe"])
        for (tenantID, owner, ref) in [(tenant.id, ann.id, "ANN-1"), (tenant.id, bob.id, "BOB-1"), (other.id, ann.id, "OTHER-1")] {
            _ = try await Self.everyOwner(of: tenantID, in: db) { connection in
                try await connection.query(
                    "INSERT INTO probe_items (tenant_id, owner_id, ref) VALUES (\(tenantID), \(owner), \(ref))", logger: TestDatabase.logger)
            }
        }
        let database = try Database.pooled(db.app, size: 2, embedded: try TestDatabase.cluster(), logger: TestDatabase.logger)
        let report = try await withThrowingTaskGroup(of: PriorityProbeModule.Behind?.self) { group in
            // The request connections too (`services`): they close when the group is cancelled.
            for service in database.services { group.addTask { try? await service.run(); return nil } }
            let runtime = try await AtriumRuntime.prepareForTest(db, modules: [PriorityProbeModule()], database: database)
            let report = try await Application(router: runtime.router, logger: TestDatabase.logger).test(.router) { client in
                let token = try await client.login("acme", "ann@acme.test", "correct horse battery").access
                let response = try await client.send(.get, "/v1/tenants/acme/probe/behind", token: token)
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .convertFromSnakeCase
                return try decoder.decode(PriorityProbeModule.Behind.self, from: Data(String(buffer: response.body).utf8))
            }
            group.cancelAll()
            return report
        }
        #expect(report.thread == BackgroundLane.niceness)
        #expect(report.backend == BackgroundLane.niceness)
        #expect(report.refs == ["ANN-1"])
        #expect(report.writeRefused)
        let count = try await Self.everyOwner(of: tenant.id, in: db) { connection in
            try await connection.query("SELECT count(*)::int8 FROM probe_items", logger: TestDatabase.logger).first().decode(Int64.self)
        }
        #expect(count == 2)
    }

    static func everyOwner<Result: Sendable>(of tenantID: UUID, in db: TestDatabase, _ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenantID, logger: TestDatabase.logger) { connection in
                try await connection.scopeToAllOwners(logger: TestDatabase.logger)
                return try await body(connection)
            }
        }
    }

    /// Imports hold at most all but one of the background pool's connections: a report
    /// read gets the last one while they run, and a further import waits its turn.
    @Test func bulkWorkLeavesOneBackgroundConnectionForReads() async throws {
        let db = try await TestDatabase.create()
        let database = try Database.pooled(db.app, size: 2, backgroundSize: 2, logger: TestDatabase.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in database.clients { group.addTask { await client.run() } }
            let (held, holding) = AsyncStream.makeStream(of: Void.self)
            let (finish, finishing) = AsyncStream.makeStream(of: Void.self)
            let secondRan = Atomic<Bool>(false)
            group.addTask {
                try await database.withBackgroundConnection(logger: TestDatabase.logger) { _ in
                    holding.yield()
                    for await _ in finish { break }
                }
            }
            for await _ in held { break }
            // The one bulk permit is held: a read still gets a connection at once.
            let read = try await database.withBackgroundConnection(logger: TestDatabase.logger, bulk: false) { connection in
                try await connection.query("SELECT 1", logger: TestDatabase.logger).first().decode(Int.self)
            }
            #expect(read == 1)
            // A second import waits for the first.
            group.addTask {
                try await database.withBackgroundConnection(logger: TestDatabase.logger) { _ in secondRan.store(true, ordering: .relaxed) }
            }
            try await Task.sleep(for: .milliseconds(300))
            let ranEarly = secondRan.load(ordering: .relaxed)
            #expect(!ranEarly)
            finishing.yield()
            while !secondRan.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
            group.cancelAll()
        }
    }

    @Test func bulkPermitsAreAllButOneAndServeWaitersInOrder() async throws {
        #expect(BulkPermits(connections: 4).available == 3)
        #expect(BulkPermits(connections: 1).available == 1)
        let permits = BulkPermits(connections: 2)
        let order = OrderRecorder()
        let (release, releasing) = AsyncStream.makeStream(of: Void.self)
        let (held, holding) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await permits.withPermit {
                    holding.yield()
                    for await _ in release { break }
                }
            }
            for await _ in held { break }
            #expect(permits.available == 0)
            for index in 1...3 {
                group.addTask { try await permits.withPermit { await order.add(index) } }
                try await Task.sleep(for: .milliseconds(50))
            }
            // A cancelled waiter leaves the queue and takes nothing.
            let cancelled = Task { try await permits.withPermit { await order.add(99) } }
            try await Task.sleep(for: .milliseconds(50))
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            releasing.yield()
            try await group.waitForAll()
        }
        #expect(await order.values == [1, 2, 3])
        #expect(permits.available == 1)
    }

    static func niceness(ofBackendOf connection: PostgresConnection) async throws -> Int32 {
        let pid = try await connection.query("SELECT pg_backend_pid()", logger: TestDatabase.logger).first().decode(Int32.self)
        errno = 0
        let niceness = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
        #expect(errno == 0, "backend \(pid) is not a process of this machine")
        return niceness
    }
}

/// The order in which tasks got their permits.
actor OrderRecorder {
    var values: [Int] = []
    func add(_ value: Int) { values.append(value) }
}

/// A module whose import check notes the nice value of the thread it runs on.
struct PriorityProbeModule: AtriumModule {
    static let checkedAtNiceness = Atomic<Int32>(-100)

    var id: String { "probe" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("probe.items.own", description: "Own items"), .init("probe.items.import", description: "Import items")]
    }
    var roleGrants: [String: [String]] { ["member": ["probe.items.own", "probe.items.import"]] }

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_probe.sql", sql: """
            CREATE TABLE probe_items (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                ref text NOT NULL,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, ref)
            );
            CALL atrium_owned_table('probe_items');
            """)]
    }

    static let items = ImportEntity(
        "items", fields: ["ref"], key: "ref", table: "probe_items",
        check: { _ in
            checkedAtNiceness.store(ThreadPriority.callingThread, ordering: .relaxed)
            return nil
        },
        land: { landing in
            """
            WITH written AS (
                INSERT INTO probe_items (tenant_id, owner_id, ref)
                SELECT \(landing.tenantID), \(landing.ownerID), s.ref FROM atrium_import_stage s
                ON CONFLICT (tenant_id, ref) DO NOTHING
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        })
    static let imports = BulkImport(module: "probe", entities: [items])

    func routes(_ routes: ModuleRoutes) {
        Self.imports.register(routes, owned: "probe.items", requiring: "probe.items.import")
        routes.on(.get, "behind", summary: "A read behind the request path", access: .owned("probe.items"), response: Behind.self) { request in
            try await request.readBehindRequests { transaction in
                let thread = ThreadPriority.callingThread
                let backend = try await BackgroundPriorityTests.niceness(ofBackendOf: transaction.connection)
                let refs = try await transaction.query("SELECT ref FROM probe_items ORDER BY ref").map { row in
                    var columns = RowReader(row)
                    return try columns.next() as String
                }
                var writeRefused = false
                do {
                    try await transaction.query("INSERT INTO probe_items (tenant_id, owner_id, ref) VALUES (\(transaction.tenantID), \(transaction.principalID), 'NEW')")
                } catch {
                    writeRefused = String(reflecting: error).contains("read-only transaction")
                }
                return Behind(thread: thread, backend: backend, refs: refs, writeRefused: writeRefused)
            }
        }
    }

    /// What the `behind` route saw.
    struct Behind: Codable, Sendable {
        var thread: Int32
        var backend: Int32
        var refs: [String]
        var writeRefused: Bool
    }

    var jobs: [JobDefinition] { [Self.imports.job] }
}
