import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Input domains: times, cursors and database refusals")
struct InputDomainTests {
    @Test func timestampsMustBeRealCalendarTimesInYearsOneToNineThousandNineHundredNinetyNine() throws {
        #expect(InputDomain.parseTimestamp("1970-01-01T00:00:00Z")?.timeIntervalSince1970 == 0)
        #expect(InputDomain.parseTimestamp("2024-05-01T12:30:00+02:00") == InputDomain.parseTimestamp("2024-05-01T10:30:00Z"))
        #expect(InputDomain.parseTimestamp("2024-02-29T23:59:59.123456Z") != nil)
        #expect(InputDomain.parseTimestamp("0001-01-01T00:00:00Z") == InputDomain.earliestTime)
        #expect(InputDomain.parseTimestamp("9999-12-31T23:59:59Z") != nil)
        for refused in [
            "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:30:60Z", "2024-05-01T12:30:00", "2024-05-01T12:30:00+24:00",
            "10000-01-01T00:00:00Z", "2024-5-1T12:30:00Z", "2024-05-01T12:30:00.Z", "2024-05-01T12:30:00.1234567890Z", "1e300", "", "nan",
            "9999-12-31T23:59:59-01:00",
        ] {
            #expect(InputDomain.parseTimestamp(refused) == nil, "\(refused)")
        }
        #expect(InputDomain.isDate("2024-02-29"))
        #expect(!InputDomain.isDate("2024-02-30"))
        #expect(!InputDomain.isDate("0000-01-01"))
        #expect(!InputDomain.isDate("2024-02-29T00:00:00Z"))
    }

    @Test func lengthsCountCodePointsAsPostgreSQLDoes() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"
        #expect(family.count == 1)
        #expect(InputDomain.length(family) == 5)
        #expect(InputDomain.textProblem(String(repeating: family, count: 50), maximum: 200) == "must be at most 200 characters")
        #expect(InputDomain.textProblem("a\u{0}b") == "must not contain NUL characters")
    }

    @Test func keysetCursorsRoundTripAndForgedTimesAreRefused() throws {
        let cursor = KeysetCursor(time: Date(timeIntervalSince1970: 1_700_000_000.123456), id: UUID())
        #expect(try KeysetCursor.decode(cursor.encoded) == cursor)
        for time in ["1e300", "inf", "-inf", "nan", "1e13", "-1e13", "-62135596801"] {
            let forged = PageCursor([time, UUID().uuidString]).encoded
            #expect(throws: AtriumError.self, "\(time)") { try KeysetCursor.decode(forged) }
        }
        #expect(throws: AtriumError.self) { try KeysetCursor.decode(String(repeating: "A", count: 600)) }
    }

    @Test func constraintNamesBecomeTheFieldsTheyGuard() {
        #expect(DatabaseProblems.field(constraint: "sales_contacts_first_name_check", table: "sales_contacts") == "first_name")
        #expect(DatabaseProblems.field(constraint: "sales_contacts_email_check1", table: "sales_contacts") == "email")
        #expect(DatabaseProblems.field(constraint: "sales_contacts_check", table: "sales_contacts") == "body")
        #expect(DatabaseProblems.field(constraint: "users_tenant_id_email_key", table: "users") == "email")
        #expect(DatabaseProblems.field(constraint: "some_other_rule", table: "sales_deals") == "body")
        #expect(DatabaseProblems.field(constraint: nil, table: nil) == "body")
    }
}

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
            let pipeline = try await client.send(.get, "\(Self.base)/pipeline", token: team.ann)
            #expect(pipeline.status == .ok)
            #expect(String(buffer: pipeline.body).contains("\"amount\":10000000000000000"))
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
