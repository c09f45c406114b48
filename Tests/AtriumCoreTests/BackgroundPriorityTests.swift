@testable import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle
import HummingbirdTesting
import NIOCore
import PostgresNIO
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

    static func niceness(ofBackendOf connection: PostgresConnection) async throws -> Int32 {
        let pid = try await connection.query("SELECT pg_backend_pid()", logger: TestDatabase.logger).first().decode(Int32.self)
        errno = 0
        let niceness = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
        #expect(errno == 0, "backend \(pid) is not a process of this machine")
        return niceness
    }
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
