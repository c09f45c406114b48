import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// A module whose migration says what its constraints mean to a client.
struct RoomsModule: AtriumModule {
    var id: String { "rooms" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] { [.init("rooms.book", description: "Book rooms")] }

    func migrations() throws -> [Migration] {
        [Migration(owner: "rooms", version: 1, fileName: "0001_bookings.sql", sql: """
            CREATE TABLE rooms_bookings (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                reference text NOT NULL,
                starts_at timestamptz NOT NULL,
                ends_at timestamptz NOT NULL,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, reference),
                CONSTRAINT rooms_bookings_no_overlap EXCLUDE USING gist (tstzrange(starts_at, ends_at) WITH &&)
            );
            COMMENT ON CONSTRAINT rooms_bookings_no_overlap ON rooms_bookings IS
                'problem: 409 slot_taken starts_at overlaps another booking';
            CALL atrium_tenant_table('rooms_bookings');
            """)]
    }

    struct NewBooking: Codable, Sendable {
        var reference: String
        var startsAt: Date
        var endsAt: Date
    }

    struct Booked: Codable, Sendable {
        var id: UUID
    }

    func routes(_ routes: ModuleRoutes) {
        routes.on(.post, "bookings", summary: "Book", access: .permission("rooms.book"), body: NewBooking.self, response: Booked.self, status: .created) {
            request, input in
            try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    INSERT INTO rooms_bookings (tenant_id, reference, starts_at, ends_at)
                    VALUES (\(transaction.tenantID), \(input.reference), \(input.startsAt), \(input.endsAt)) RETURNING id
                    """, logger: transaction.logger
                ).collect()
                return Booked(id: try rows[0].decode(UUID.self))
            }
        }
    }
}

@Suite struct DeclaredConstraintTests {
    @Test func aConstraintsCommentDecidesItsProblemAndOthersGetTheGenericOne() async throws {
        let db = try await TestDatabase.create(modules: [RoomsModule()])
        let tenant = try await db.createTenant("acme", modules: ["rooms"])
        try await withTestApp(db, modules: [RoomsModule()]) { client, _ in
            func book(_ body: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/v1/tenants/acme/rooms/bookings", method: .post,
                    headers: [.authorization: TestAuthenticator.header(tenant, "rooms.book"), .contentType: "application/json"],
                    body: ByteBuffer(string: body))
            }
            #expect(try await book(#"{"reference":"a","starts_at":"2026-12-01T10:00:00Z","ends_at":"2026-12-01T11:00:00Z"}"#).status == .created)
            for _ in 0..<2 {  // the second answer comes from the cache
                let overlap = try await book(#"{"reference":"b","starts_at":"2026-12-01T10:30:00Z","ends_at":"2026-12-01T12:00:00Z"}"#)
                #expect(overlap.status == .conflict)
                #expect(json(overlap)["code"]?.string == "slot_taken")
                #expect(json(overlap)["errors"]?.array?.first?["field"]?.string == "starts_at")
                #expect(json(overlap)["errors"]?.array?.first?["message"]?.string == "overlaps another booking")
            }
            let duplicate = try await book(#"{"reference":"a","starts_at":"2026-12-02T10:00:00Z","ends_at":"2026-12-02T11:00:00Z"}"#)
            #expect(duplicate.status == .conflict)
            #expect(json(duplicate)["code"]?.string == "duplicate")
            #expect(!String(buffer: duplicate.body).contains("rooms_bookings"))
        }
    }

    @Test func onlyWellFormedProblemCommentsAreDeclarations() {
        let parsed = DeclaredConstraints.Declaration(comment: "problem: 409 slot_taken starts_at overlaps another booking")
        #expect(parsed?.status == .conflict)
        #expect(parsed?.message == "overlaps another booking")
        for comment in ["a booking overlap", "problem: 500 boom x y", "problem: 409 slot_taken", "problem: abc slot x y"] {
            #expect(DeclaredConstraints.Declaration(comment: comment) == nil, "\(comment)")
        }
    }
}
