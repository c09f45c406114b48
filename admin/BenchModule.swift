import AtriumCore
import Foundation
import PostgresNIO

/// A module for `bench/metering.sh` only, installed when `ATRIUM_BENCH_MODULE=1`: two
/// creates of the same owned row, one of them metered, so that what `recordUsage` adds
/// to a module's write is measured over HTTP, on the request path modules run on. It is
/// written as a module author would, on the kernel's public API.
struct BenchModule: AtriumModule {
    static let meter = "bench.records"
    static let access = RouteAccess.owned("bench.records")

    var id: String { "bench" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("bench.records.own", description: "Write bench records"), .init("bench.records.any", description: "Read every bench record")]
    }
    var roleGrants: [String: [String]] { ["member": ["bench.records.own"], "admin": ["bench.records.own", "bench.records.any"]] }
    var meters: [MeterDefinition] { [.init(Self.meter, aggregation: .count, unit: "record")] }

    func migrations() throws -> [Migration] {
        [
            Migration(
                owner: id, version: 1, fileName: "0001_bench.sql",
                sql: """
                    CREATE TABLE bench_records (
                        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                        id uuid NOT NULL,
                        owner_id uuid NOT NULL,
                        body text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (tenant_id, id)
                    );
                    CREATE INDEX bench_records_owner ON bench_records (tenant_id, owner_id, created_at);
                    CALL atrium_owned_table('bench_records');
                    """)
        ]
    }

    struct NewRecord: Codable, Sendable {
        var body: String
    }

    struct Record: Codable, Sendable {
        var id: UUID
        var createdAt: Date
    }

    func routes(_ routes: ModuleRoutes) {
        for (path, metered) in [("records", false), ("metered-records", true)] {
            routes.create(
                path, summary: metered ? "Create a bench record and record its usage" : "Create a bench record", access: Self.access,
                body: NewRecord.self, response: Record.self
            ) { request, input in
                let id = UUID()
                return try await request.transaction { transaction in
                    guard let owner = transaction.principalID else { throw AtriumError.forbidden("a bench record needs a user as its owner") }
                    if metered { try await transaction.recordUsage(Self.meter, idempotencyKey: "bench:\(id.uuidString.lowercased())") }
                    let rows = try await transaction.lastStatement {
                        try await transaction.query(
                            """
                            INSERT INTO bench_records (tenant_id, id, owner_id, body) VALUES (\(transaction.tenantID), \(id), \(owner), \(input.body))
                            RETURNING created_at
                            """)
                    }
                    guard let created = try rows.first?.decode(Date.self) else { throw AtriumError.internalError() }
                    return Record(id: id, createdAt: created)
                }
            }
        }
    }
}
