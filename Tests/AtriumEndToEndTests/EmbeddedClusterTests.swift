import AtriumCore
import Foundation
import Testing

@Suite("The embedded cluster outlives no atrium", .serialized)
struct EmbeddedClusterTests {
    func waitUntilReady(port: Int, process: RunningProcess) async throws {
        for _ in 0..<600 {
            if (try? await HTTP.get("http://127.0.0.1:\(port)/readyz").status) == 200 { return }
            try #require(kill(process.pid, 0) == 0, "atrium serve exited: \(process.output())")
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("atrium serve did not become ready in 60 s: \(process.output())")
    }

    /// `kill -9` leaves the cluster running with nobody to stop it; the next server
    /// adopts it and stops it when it is itself stopped.
    @Test(.timeLimit(.minutes(3))) func aServerAdoptsTheClusterOfAKilledOneAndStopsItOnExit() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appending(path: ".atrium")
        let postmaster = data.appending(path: "postgres/postmaster.pid").path()
        let atrium = AtriumBinary(dataDirectory: data)
        let empty = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)

        let firstPort = try LocalPort.free()
        let first = try atrium.start(["serve", "--port", String(firstPort), "--tenants-dir", empty.path()])
        try await waitUntilReady(port: firstPort, process: first)
        first.signal(SIGKILL)
        _ = try first.wait(timeout: .seconds(30))
        #expect(FileManager.default.fileExists(atPath: postmaster), "the killed server left its cluster running")

        let secondPort = try LocalPort.free()
        let second = try atrium.start(["serve", "--port", String(secondPort), "--tenants-dir", empty.path()])
        try await waitUntilReady(port: secondPort, process: second)
        // A third server on the same port stops at once, naming the port and the setting.
        let busy = try atrium.run("serve", "--port", String(secondPort), "--tenants-dir", empty.path(), timeout: .seconds(30))
        #expect(busy.status == 1)
        #expect(busy.stderr.contains("port \(secondPort)") && busy.stderr.contains("ATRIUM_PORT"), "\(busy.stderr)")
        #expect(!busy.stdout.contains("serving") && !busy.stderr.contains("serving"))
        second.signal(SIGTERM)
        let result = try second.wait(timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: postmaster), "the adopted cluster was stopped with the server")
        if FileManager.default.fileExists(atPath: postmaster) { _ = try? atrium.run("db", "stop") }
    }
}
