import AtriumTesting
import Foundation
import Testing

/// Runs the built `atrium` executable the way an operator would.
struct AtriumBinary {
    typealias Result = ProcessResult

    static var path: String {
        if let path = ProcessInfo.processInfo.environment["ATRIUM_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appending(path: ".build/debug/atrium").path()
    }

    var environment: [String: String]

    /// The test's own environment minus anything that would point the binary at another database.
    init(dataDirectory: URL? = nil, extra: [String: String] = [:]) {
        var environment = ProcessInfo.processInfo.environment
        for key in ["DATABASE_URL", "DATABASE_OWNER_URL", "ATRIUM_DATA_DIR", "ATRIUM_LOG_FORMAT", "ATRIUM_LOG_LEVEL"] {
            environment.removeValue(forKey: key)
        }
        if let dataDirectory { environment["ATRIUM_DATA_DIR"] = dataDirectory.path() }
        environment.merge(extra) { $1 }
        self.environment = environment
    }

    /// Runs `atrium ARGS` to completion.
    func run(_ arguments: String..., stdin: String? = nil, timeout: Duration = .seconds(120)) async throws -> Result {
        let process = try start(arguments, stdin: stdin)
        return try await process.wait(timeout: timeout)
    }

    /// Runs `atrium ARGS` to completion with `directory` as its working folder.
    func run(in directory: URL, _ arguments: String..., timeout: Duration = .seconds(120)) async throws -> Result {
        let process = try RunningProcess(
            executable: "/bin/sh", arguments: ["-c", #"cd "$1" && shift && exec "$0" "$@""#, Self.path, directory.path()] + arguments,
            environment: environment)
        return try await process.wait(timeout: timeout)
    }

    /// Runs `atrium ARGS` to completion blocking the calling thread, for a `defer` that
    /// cannot await (stopping a test's cluster); everywhere else, `run`.
    func runBlocking(_ arguments: String..., timeout: Duration = .seconds(60)) throws -> Result {
        try start(arguments).waitBlocking(timeout: timeout)
    }

    func start(_ arguments: [String], stdin: String? = nil) throws -> RunningProcess {
        try RunningProcess(executable: Self.path, arguments: arguments, environment: environment, stdin: stdin)
    }
}

/// A scratch folder the `postgres` OS user can enter (when the tests run as root).
func makeScratchDirectory() throws -> URL {
    let url = URL(fileURLWithPath: "/tmp/atrium-e2e-\(UUID().uuidString.prefix(8).lowercased())")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    return url
}

extension RunningProcess {
    /// Waits until the `atrium serve` of this process answers `/readyz` with 200 on
    /// `port` (three minutes at most: a new embedded cluster's initdb and migrations take
    /// seconds alone, and over a minute on 2 cores beside the rest of the suite); fails
    /// with its output if it exits or never gets ready.
    func waitUntilReady(port: Int) async throws {
        var ready = false
        let deadline = ContinuousClock.now + .seconds(180)
        while !ready, kill(pid, 0) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            ready = (try? await HTTP.get("http://127.0.0.1:\(port)/readyz").status) == 200
        }
        try #require(ready, "atrium serve on port \(port) is not ready: \(output())")
    }
}
