import AtriumCore
import AtriumTesting
import Foundation
import Testing

@Suite("The embedded cluster outlives no atrium", .serialized)
struct EmbeddedClusterTests {
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
        try await first.waitUntilReady(port: firstPort)
        first.signal(SIGKILL)
        _ = try await first.wait(timeout: .seconds(30))
        #expect(FileManager.default.fileExists(atPath: postmaster), "the killed server left its cluster running")

        let secondPort = try LocalPort.free()
        let second = try atrium.start(["serve", "--port", String(secondPort), "--tenants-dir", empty.path()])
        try await second.waitUntilReady(port: secondPort)
        // A third server on the same port stops at once, naming the port and the setting.
        let busy = try await atrium.run("serve", "--port", String(secondPort), "--tenants-dir", empty.path(), timeout: .seconds(30))
        #expect(busy.status == 1)
        #expect(busy.stderr.contains("port \(secondPort)") && busy.stderr.contains("ATRIUM_PORT"), "\(busy.stderr)")
        #expect(!busy.stdout.contains("serving") && !busy.stderr.contains("serving"))
        second.signal(SIGTERM)
        let result = try await second.wait(timeout: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: postmaster), "the adopted cluster was stopped with the server")
        if FileManager.default.fileExists(atPath: postmaster) { _ = try? await atrium.run("db", "stop") }
    }
}
