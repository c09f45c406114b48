import AtriumCore
import AtriumTesting
import Foundation
import Testing

/// The README's promise for SIGTERM: stop accepting, finish the requests and jobs in
/// flight, then exit 0 — nothing half-done is left behind.
@Suite("Graceful stop of a real atrium serve")
struct GracefulStopTests {
    @Test(.timeLimit(.minutes(5))) func sigtermFinishesTheUploadAndTheImportInFlight() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = try LocalPort.free()
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", repository.appending(path: "tenants").path()])
        defer {
            server.stop(timeout: .seconds(10))
            _ = try? atrium.runBlocking("db", "stop")
        }
        try await server.waitUntilReady(port: port)
        let login = try await HTTP.post(
            "http://127.0.0.1:\(port)/v1/tenants/acme/auth/login", json: #"{"email":"rep@acme.test","password":"acme-demo-member"}"#)
        let token = try #require(
            (try? JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String,
            "login answered \(login.status): \(String(decoding: login.body, as: UTF8.self))")

        func csv(_ rows: Int, prefix: String) -> Data {
            var text = "email,first_name,last_name\r\n"
            for index in 0..<rows { text += "\(prefix)\(index)@example.com,P\(index),Person\r\n" }
            return Data(text.utf8)
        }
        let tenant = try await atrium.run("db", "shell", "--role", "owner", "-c", "SELECT id FROM tenants WHERE slug = 'acme'")
        let tenantID = try #require(tenant.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { UUID(uuidString: $0) != nil })
        let scoped = AtriumBinary(
            dataDirectory: scratch.appending(path: ".atrium"), extra: ["PGOPTIONS": "-c app.tenant_id=\(tenantID) -c app.owner_scope=any"])

        // The first import must still be running when SIGTERM comes, however fast this
        // machine lands it: another session holds a lock that its landing INSERT waits for,
        // until the test lets go after the signal. (A large file alone was not enough: on a
        // quiet machine the import finished between two polls.)
        let holder = try AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["PGAPPNAME": "graceful-stop-lock"]).start(
            ["db", "shell", "--role", "owner"], stdin: "BEGIN; LOCK TABLE sales_contacts IN SHARE MODE; SELECT pg_sleep(300); COMMIT;\n")
        func releaseLock() async throws {
            _ = try await atrium.run(
                "db", "shell", "--role", "owner", "-c",
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'graceful-stop-lock'")
            _ = try await holder.wait(timeout: .seconds(60))
        }
        // Killing the holder (psql) ends its session and with it the lock.
        defer { holder.killAndReap() }
        let locked = try await Self.eventually {
            try await atrium.run(
                "db", "shell", "--role", "owner", "-c",
                """
                SELECT 'held=' || count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE a.application_name = 'graceful-stop-lock' AND l.relation = 'sales_contacts'::regclass AND l.mode = 'ShareLock' AND l.granted
                """
            ).stdout.contains("held=1")
        }
        try #require(locked, "the lock holder never took its lock: \(holder.output())")

        let first = try RawHTTP(port: port)
        try first.send(Self.uploadHead(token: token, length: csv(5_000, prefix: "a").count) + csv(5_000, prefix: "a"))
        #expect(try await first.response().hasPrefix("HTTP/1.1 202"))
        // Watched in the database, not through the API: polling the API as fast as this
        // spends the user's per-minute rate limit, and the upload below would be refused.
        let running = try await Self.eventually {
            try await scoped.run("db", "shell", "--role", "owner", "-c", "SELECT state FROM imports").stdout.contains("running")
        }
        try #require(running, "the first import never started")

        // A second upload, half sent when the signal arrives, completes after it.
        let body = csv(5_000, prefix: "b")
        let second = try RawHTTP(port: port)
        try second.send(Self.uploadHead(token: token, length: body.count) + body.prefix(body.count / 2))
        try await Task.sleep(for: .milliseconds(300))
        server.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        #expect(waitpid(server.pid, nil, WNOHANG) == 0, "the server exited with a request in flight")
        try second.send(body.suffix(from: body.count / 2))
        #expect(try await second.response().hasPrefix("HTTP/1.1 202"))
        // The import in flight lands only now, after the signal, and the server waits for it.
        #expect(waitpid(server.pid, nil, WNOHANG) == 0, "the server exited before its running import landed")
        let held = try await scoped.run("db", "shell", "--role", "owner", "-c", "SELECT 'first=' || state FROM imports ORDER BY created_at LIMIT 1")
        #expect(held.stdout.contains("first=running"), "\(held.stdout)")
        try await releaseLock()
        let stopped = try await server.wait(timeout: .seconds(60))
        #expect(stopped.status == 0, "\(stopped.stderr.suffix(3_000))")

        // The running import finished; the second one waits, queued, for the next worker.
        let states = try await scoped.run(
            "db", "shell", "--role", "owner", "-c",
            """
            SELECT 'imports=' || (SELECT string_agg(state || ':' || rows_written, ',' ORDER BY created_at) FROM imports)
                || ' running_jobs=' || (SELECT count(*) FROM jobs WHERE state = 'running')
            """)
        #expect(states.status == 0, "\(states.stderr)")
        #expect(states.stdout.contains("imports=succeeded:5000,queued:0 running_jobs=0"), "\(states.stdout)")
        _ = try? await atrium.run("db", "stop")
    }

    /// Whether `check` comes true within 300 tries, 50 ms apart.
    static func eventually(_ check: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<300 {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func uploadHead(token: String, length: Int) -> Data {
        Data(
            ("POST /v1/tenants/acme/sales/imports?entity=contacts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: text/csv\r\nContent-Length: \(length)\r\nConnection: close\r\n\r\n").utf8)
    }
}

/// One HTTP/1.1 exchange over a plain socket, so a test decides when each byte is sent.
final class RawHTTP {
    let socketFD: Int32

    init(port: Int) throws {
        socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socketFD)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { close(socketFD) }

    func send(_ data: Data) throws {
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { buffer in
                Glibc.send(socketFD, buffer.baseAddress.map { $0 + offset }, data.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { throw POSIXError(.EPIPE) }
            offset += written
        }
    }

    struct NoAnswer: Error, CustomStringConvertible {
        var received: Data
        var description: String { "the server neither answered in full nor closed the connection; got: \(String(decoding: received, as: UTF8.self))" }
    }

    /// Everything the server sends until it closes the connection, within `timeout`.
    /// The socket is read without blocking, between sleeps: a test waiting for a server
    /// holds none of the few threads the other tests' async work needs.
    func response(timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(socketFD, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                received.append(contentsOf: buffer[0..<count])
                continue
            }
            if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { break }
            guard ContinuousClock.now < deadline else { throw NoAnswer(received: received) }
            try await Task.sleep(for: .milliseconds(10))
        }
        return String(decoding: received, as: UTF8.self)
    }
}
