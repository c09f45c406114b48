import AtriumCore
import AtriumTesting
import Foundation
import Testing

/// A client that uploads slowly must not hold one of the pool's few connections (and an
/// open transaction) for as long as it takes: with the fewest connections a server runs on
/// (one request connection per event loop), three stalled uploads leave every other
/// authenticated request unserved unless the request path lets go of its connection once
/// the caller is checked; and PostgreSQL itself shows no transaction left open meanwhile.
@Suite("Slow uploads and the connection pool")
struct SlowUploadTests {
    static let openTransactions = "SELECT 'open=' || count(*) FROM pg_stat_activity WHERE usename = 'atrium_app' AND state LIKE 'idle in transaction%'"

    @Test(.timeLimit(.minutes(5))) func stalledUploadsHoldNoPooledConnection() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = try LocalPort.free()
        let fewest = ConnectionBudget.minimum(loops: ProcessInfo.processInfo.activeProcessorCount)
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_DB_CONNECTIONS": String(fewest)])
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", repository.appending(path: "tenants").path(), "--no-worker"])
        defer {
            server.stop()
            _ = try? atrium.runBlocking("db", "stop")
        }
        try await server.waitUntilReady(port: port)
        let login = try await HTTP.post(
            "http://127.0.0.1:\(port)/v1/tenants/acme/auth/login", json: #"{"email":"rep@acme.test","password":"acme-demo-member"}"#)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)

        var csv = "email,first_name,last_name\r\n"
        for index in 0..<2_000 { csv += "slow\(index)@example.com,S\(index),Person\r\n" }
        let body = Data(csv.utf8)
        var uploads: [RawHTTP] = []
        for _ in 0..<3 {
            let upload = try RawHTTP(port: port)
            try upload.send(GracefulStopTests.uploadHead(token: token, length: body.count) + body.prefix(body.count / 2))
            uploads.append(upload)
        }
        try await Task.sleep(for: .milliseconds(500))  // the uploads are checked in and stalled

        // No backend holds a transaction open for a stalled upload. (A server starved of
        // CPU beside the rest of the suite may still be between its check of the caller
        // and the commit at the first look; a transaction held for the upload stays open
        // for as long as it stalls, so it is still there after five seconds.)
        var open = try await atrium.run("db", "shell", "--role", "owner", "-c", Self.openTransactions)
        for _ in 0..<10 where open.status == 0 && !open.stdout.contains("open=0") {
            try await Task.sleep(for: .milliseconds(500))
            open = try await atrium.run("db", "shell", "--role", "owner", "-c", Self.openTransactions)
        }
        #expect(open.status == 0, "\(open.stderr)")
        #expect(open.stdout.contains("open=0"), "\(open.stdout)")

        // Served while all three stall (the call fails, not hangs, past its 60 s timeout).
        let me = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: token)
        #expect(me.status == 200)
        let contacts = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/sales/contacts?limit=1", bearer: token)
        #expect(contacts.status == 200)

        // The uploads then finish normally, each checked in before it stalled.
        for upload in uploads {
            try upload.send(body.suffix(from: body.count / 2))
            #expect(try await upload.response().hasPrefix("HTTP/1.1 202"))
        }
    }
}
