@testable import AtriumCore
import Foundation
import Testing

/// What the console makes of a server's refusals: the exit code and a line a person can act on.
@Suite("Remote failures")
struct RemoteFailureTests {
    func answer(_ status: Int, _ problem: String, headers: [(name: String, value: String)] = []) -> RemoteFailure {
        RemoteFailure.answer(OutboundResponse(status: status, headers: headers, body: Data(problem.utf8)), server: "https://api.example.com")
    }

    @Test func statusesMapToExitCodesAndReadableLines() {
        let limited = answer(429, #"{"title":"Rate limited","detail":"The rate limit 100;w=60 is used up.","code":"rate_limited"}"#, headers: [("Retry-After", "7")])
        #expect(limited.exitCode == 1)
        #expect(limited.message == "rate limited (retry after 7 s): The rate limit 100;w=60 is used up.")

        let denied = answer(403, #"{"detail":"this operation requires the 'kernel.users.read' permission","code":"permission_denied"}"#)
        #expect(denied.exitCode == 4)
        #expect(denied.message.contains("'kernel.users.read'"))
        let plan = answer(403, #"{"detail":"The 'free' plan does not include the 'sales' module.","code":"plan_upgrade_required"}"#)
        #expect(plan.exitCode == 1)
        #expect(plan.message.hasSuffix("[plan_upgrade_required]"))

        let unauthenticated = answer(401, #"{"detail":"Missing or invalid credentials.","code":"unauthenticated"}"#)
        #expect(unauthenticated.exitCode == 3)
        #expect(unauthenticated.message.contains("https://api.example.com"))

        let invalid = answer(422, #"{"detail":"The request is invalid.","code":"validation_failed","errors":[{"field":"name","message":"is required"}]}"#)
        #expect(invalid.message == "The request is invalid.\n  name: is required [validation_failed]")
        #expect(invalid.status == 422)
        #expect(invalid.code == "validation_failed")

        let notJSON = answer(502, "<html>Bad gateway</html>")
        #expect(notJSON.exitCode == 1)
        #expect(notJSON.message == "HTTP 502")
    }
}
