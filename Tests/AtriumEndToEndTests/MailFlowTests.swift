import AtriumCore
import AtriumTesting
import Foundation
import Testing

/// A real SMTP server (aiosmtpd) that stores each message it accepts as JSON.
struct SMTPSink {
    let process: RunningProcess
    let port: Int
    let directory: URL

    static func start(in scratch: URL) async throws -> SMTPSink {
        let python = try #require(ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"], "make test provides a Python with aiosmtpd")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let port = try LocalPort.free()
        let directory = scratch.appending(path: "mail")
        let process = try RunningProcess(
            executable: python, arguments: [root.appending(path: "scripts/smtp-sink.py").path(), String(port), directory.path()],
            environment: ProcessInfo.processInfo.environment)
        for _ in 0..<600 where !process.output().0.contains("ready") { try await Task.sleep(for: .milliseconds(100)) }
        return SMTPSink(process: process, port: port, directory: directory)
    }

    /// Waits for the `number`th message and returns it.
    func message(_ number: Int) async throws -> [String: Any] {
        let file = directory.appending(path: "\(number).json")
        for _ in 0..<150 {
            if let data = FileManager.default.contents(atPath: file.path()) {
                return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RunningProcess.TimeoutError(output: ("no message \(number) in \(directory.path())", ""))
    }

    var count: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path())) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.count
    }

    func stop() {
        process.stop(timeout: .seconds(10))
    }
}

/// The code a message tells the reader to send to `route`.
func token(in message: [String: Any], for route: String) -> String? {
    guard let text = message["text"] as? String, let range = text.range(of: "send this code to \(route): ") else { return nil }
    return text[range.upperBound...].split(whereSeparator: \.isWhitespace).first.map(String.init)
}

@Suite("Email flows through a real SMTP server", .serialized)
struct MailFlowTests {
    @Test func signUpVerificationAndPasswordResetArriveByMail() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let sink = try await SMTPSink.start(in: scratch)
        defer { sink.stop() }
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try "slug: acme\nname: Acme Mail\nsettings:\n  self_signup: true\n".write(to: tenants.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        let port = try LocalPort.free()
        let atrium = AtriumBinary(
            dataDirectory: scratch.appending(path: ".atrium"),
            extra: ["ATRIUM_SMTP_URL": "smtp://127.0.0.1:\(sink.port)", "ATRIUM_APP_URL": "https://app.example.test", "ATRIUM_MAIL_FROM": "Acme <noreply@acme.test>"])
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)/v1/tenants/acme"
        try await server.waitUntilReady(port: port)

        let registered = try await HTTP.post("\(base)/auth/register", json: #"{"email":"new@acme.test","password":"first-password"}"#)
        #expect(registered.status == 201)
        let welcome = try await sink.message(1)
        #expect(welcome["subject"] as? String == "Confirm your email for Acme Mail")
        #expect(welcome["to"] as? [String] == ["new@acme.test"])
        #expect(welcome["from"] as? String == "noreply@acme.test")
        #expect((welcome["text"] as? String)?.contains("https://app.example.test/verify-email?tenant=acme&token=") == true)
        let verification = try #require(token(in: welcome, for: "auth/verify-email"))
        #expect(try await HTTP.post("\(base)/auth/verify-email", json: #"{"token":"\#(verification)"}"#).status == 200)
        let reused = try await HTTP.post("\(base)/auth/verify-email", json: #"{"token":"\#(verification)"}"#)
        #expect(reused.status == 400)

        // Forgot-password answers alike for unknown and known addresses; only the known one gets mail.
        let unknown = try await HTTP.post("\(base)/auth/forgot-password", json: #"{"email":"nobody@acme.test"}"#)
        let known = try await HTTP.post("\(base)/auth/forgot-password", json: #"{"email":"NEW@acme.test"}"#)
        #expect(unknown.status == 202)
        #expect(known.status == 202)
        #expect(unknown.body == known.body)
        let reset = try await sink.message(2)
        #expect(reset["subject"] as? String == "Reset your Acme Mail password")
        let resetToken = try #require(token(in: reset, for: "auth/reset-password"))
        #expect(try await HTTP.post("\(base)/auth/reset-password", json: #"{"token":"\#(resetToken)","password":"second-password"}"#).status == 204)
        #expect(try await HTTP.post("\(base)/auth/login", json: #"{"email":"new@acme.test","password":"first-password"}"#).status == 401)
        #expect(try await HTTP.post("\(base)/auth/login", json: #"{"email":"new@acme.test","password":"second-password"}"#).status == 200)
        // Every mail the server queued has left the outbox (delivered, or given up on):
        // only then does "the unknown address got none" mean anything.
        let outboxEmpty = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
            let left = try await atrium.run(
                "db", "shell", "--role", "owner", "-c",
                "SELECT 'left=' || count(*) FROM jobs WHERE kind = 'kernel.mail.send' AND state IN ('pending', 'running')")
            return left.stdout.contains("left=0")
        }
        #expect(outboxEmpty, "the mail outbox never emptied")
        #expect(sink.count == 2)
    }
}
