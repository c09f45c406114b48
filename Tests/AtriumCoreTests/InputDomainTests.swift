import AtriumCore
import AtriumTesting
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
