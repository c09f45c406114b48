import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@Suite("Hostile input over HTTP: 422, 405, 415, never a crash")
struct HostileHTTPTests {
    static let base = "/v1/tenants/acme/sales"

    /// The cursor of the crash report: its time traps the driver's Date encoding.
    static func forgedCursor(_ time: String) -> String {
        PageCursor([time, "00000000-0000-0000-0000-000000000000"]).encoded
    }

    @Test func theCrashingCursorIsAValidationProblemOnEveryList() async throws {
        try await SalesTeam.withTeam { client, team in
            for list in ["contacts", "deals", "companies", "products"] {
                for time in ["1e300", "inf", "nan", "1e13", "-1e13"] {
                    let response = try await client.send(.get, "\(Self.base)/\(list)?cursor=\(Self.forgedCursor(time))", token: team.ann)
                    #expect(response.status == .unprocessableContent, "\(list) \(time)")
                    #expect(json(response)["errors"]?.array?.first?["field"]?.string == "cursor")
                }
            }
        }
    }

    @Test func nulCalendarAndLengthProblemsNameTheirField() async throws {
        try await SalesTeam.withTeam { client, team in
            func field(_ response: TestResponse) -> String? { json(response)["errors"]?.array?.first?["field"]?.string }
            let nulQuery = try await client.send(.get, "\(Self.base)/contacts?q=a%00b", token: team.ann)
            #expect(nulQuery.status == .unprocessableContent)
            #expect(field(nulQuery) == "q")
            let nulBody = try await client.send(.post, "\(Self.base)/contacts", token: team.ann, json: #"{"first_name":"A\u0000","email":"a@b.test"}"#)
            #expect(nulBody.status == .unprocessableContent)
            #expect(field(nulBody) == "first_name")
            let badDate = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"T","expected_close":"2024-02-30"}"#)
            #expect(badDate.status == .unprocessableContent)
            #expect(field(badDate) == "expected_close")
            let badSince = try await client.send(.get, "\(Self.base)/deals?updated_since=0000-01-01T00:00:00Z", token: team.ann)
            #expect(badSince.status == .unprocessableContent)
            #expect(field(badSince) == "updated_since")
            // 41 family emoji: 41 characters to Swift, 205 code points to PostgreSQL.
            let family = String(repeating: "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", count: 41)
            let long = try await client.send(.post, "\(Self.base)/contacts", token: team.ann, json: #"{"first_name":"\#(family)","email":"x@y.test"}"#)
            #expect(long.status == .unprocessableContent)
            #expect(field(long) == "first_name")
            let huge = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"T","amount":9223372036854775807}"#)
            #expect(huge.status == .unprocessableContent)
            #expect(field(huge) == "amount")
            // Nothing of it was written.
            let contacts = try await client.send(.get, "\(Self.base)/contacts", token: team.ann)
            #expect(json(contacts)["data"]?.array?.isEmpty == true)
        }
    }

    @Test func pipelineTotalsAreExactPastWhatAnInt64Holds() async throws {
        try await SalesTeam.withTeam { client, team in
            for _ in 0..<10 {
                let created = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"Max","amount":1000000000000000}"#)
                #expect(created.status == .created)
            }
            // Each as large as a bigint column holds a tenth of Int64.max, as an import of
            // old data may have left them: ten add up past what an Int64 holds (9.22e18).
            try await withPostgresConnection(team.db.superuser, logger: TestDatabase.logger) { connection in
                try await connection.query("UPDATE sales_deals SET amount = 1000000000000000000", logger: TestDatabase.logger)
            }
            let pipeline = try await client.send(.get, "\(Self.base)/pipeline", token: team.ann)
            #expect(pipeline.status == .ok)
            #expect(String(buffer: pipeline.body).contains("\"amount\":10000000000000000000"), "\(String(buffer: pipeline.body))")
        }
    }

    @Test func wrongMethodsAre405WithAllowAndNonJSONBodiesAre415() async throws {
        try await SalesTeam.withTeam { client, team in
            let put = try await client.send(.put, "\(Self.base)/contacts", token: team.ann, json: "{}")
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers[.allow] == "GET, HEAD, POST")
            #expect(put.headers[.contentType] == "application/problem+json")
            let text = try await client.execute(
                uri: "\(Self.base)/contacts", method: .post, headers: [.authorization: "Bearer \(team.ann)", .contentType: "text/plain"],
                body: ByteBuffer(string: #"{"email":"a@b.test"}"#))
            #expect(text.status == .unsupportedMediaType)
            #expect(json(text)["code"]?.string == "unsupported_media_type")
            let unknown = try await client.send(.get, "\(Self.base)/nothing-here", token: team.ann)
            #expect(unknown.status == .notFound)
        }
    }
}
