@testable import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
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
    }

    var jobs: [JobDefinition] { [Self.imports.job] }
}
