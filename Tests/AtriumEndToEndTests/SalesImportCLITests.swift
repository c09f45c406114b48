import AtriumTesting
import Foundation
import Testing

@Suite("atrium sales import, run as a built binary", .serialized)
struct SalesImportCLITests {
    @Test func importsAFileWithProgressAndASummaryOfRejections() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        #expect(try await atrium.run("migrate").status == 0)
        #expect(try await atrium.run("tenants", "create", "acme", "--name", "Acme").status == 0)
        let user = try await atrium.run("users", "create", "--tenant", "acme", "--email", "rep@acme.test", "--password-stdin", "--role", "sales_rep",
                                  stdin: "correct horse battery\n")
        #expect(user.status == 0, "\(user.stderr)")
        var csv = "Email Address,first_name,last_name\r\n"
        for index in 0..<60_000 { csv += "p\(index)@example.com,P\(index),Person\r\n" }
        csv += "broken,Bad,Row\r\n\"open,quote\r\n"
        let file = scratch.appending(path: "contacts.csv")
        try csv.write(to: file, atomically: true, encoding: .utf8)

        let run = try await atrium.run(
            "sales", "import", "--tenant", "acme", "--entity", "contacts", "--owner", "rep@acme.test", "--mapping", #"{"email":"Email Address"}"#,
            file.path(), timeout: .seconds(300))
        #expect(run.status == 0, "\(run.stderr)")
        // The pool is running before the command leases from it: no driver warning.
        #expect(!run.stderr.contains("PostgresNIO"), "\(run.stderr)")
        // Not a terminal here: plain progress lines, then the summary with the first reasons.
        #expect(run.stdout.contains("progress: "))
        #expect(run.stdout.contains("% of the file"))
        #expect(run.stdout.contains("(rows owned by rep@acme.test)"))
        #expect(run.stdout.contains("read 60002, written 60000, unchanged 0, rejected 2"))
        #expect(run.stdout.contains("line 60002: email 'broken' is not an email address"))
        #expect(run.stdout.contains("line 60003: a quoted field is not closed before the end of the file"))

        // Without --owner the rows would go to the tenant's first owner; this tenant has none.
        let ownerless = try await atrium.run("sales", "import", "--tenant", "acme", "--entity", "contacts", file.path())
        #expect(ownerless.stderr.contains("the tenant has no active owner; pass --owner EMAIL"))
        let again = try await atrium.run("sales", "import", "--tenant", "acme", "--entity", "contacts", "--owner", "rep@acme.test", "--mapping", #"{"email":"Email Address"}"#, file.path(),
                                   timeout: .seconds(300))
        #expect(again.stdout.contains("written 0, unchanged 60000, rejected 2"))

        let small = scratch.appending(path: "small.csv")
        try "email\nnew@example.com\nbroken\n\"x\n".write(to: small, atomically: true, encoding: .utf8)
        let strict = try await atrium.run(
            "sales", "import", "--tenant", "acme", "--entity", "contacts", "--owner", "rep@acme.test", "--error-policy", "all_or_nothing", small.path())
        #expect(strict.status != 0)
        #expect(strict.stderr.contains("2 row(s) rejected; nothing was imported"))
        let missing = try await atrium.run("sales", "import", "--tenant", "acme", "--entity", "contacts", scratch.appending(path: "nope.csv").path())
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read"))

        // The example the README imports ships with the repository and imports as it says.
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = try await atrium.run(
            "sales", "import", "--tenant", "acme", "--entity", "contacts", "--owner", "rep@acme.test",
            repository.appending(path: "examples/contacts.csv").path())
        #expect(example.status == 0, "\(example.stderr)")
        #expect(example.stdout.contains("read 5, written 4, unchanged 0, rejected 1"), "\(example.stdout)")
        #expect(example.stdout.contains("line 6: email 'not-an-email' is not an email address"), "\(example.stdout)")
    }
}
