import Foundation
import Testing

/// Runs the built `atrium` executable the way an operator would.
struct AtriumBinary {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

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

/// A child process with its output captured to files, reaped with waitpid.
final class RunningProcess {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String

    init(executable: String, arguments: [String], environment: [String: String], stdin: String? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appending(path: "atrium-e2e-\(UUID().uuidString)").path()
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        let stdinPath = base + ".in"
        _ = FileManager.default.createFile(atPath: stdinPath, contents: Data((stdin ?? "").utf8))
        defer { try? FileManager.default.removeItem(atPath: stdinPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        self.pid = pid
    }

    func signal(_ signal: Int32) {
        if reapedStatus == nil { kill(pid, signal) }
    }

    /// The exit status of a process `isRunning` found ended (and reaped).
    private var reapedStatus: Int32?

    /// Whether the process is still running; an ended one is reaped (a zombie would still
    /// answer `kill(pid, 0)`).
    func isRunning() -> Bool {
        if reapedStatus != nil { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        reapedStatus = status
        return false
    }

    /// Waits for the process to end, polling with `Task.sleep`: a test waiting for a child
    /// must not hold one of the few threads every other test's async work runs on (two on
    /// a two-core machine), or concurrent tests stall behind it.
    func wait(timeout: Duration) async throws -> AtriumBinary.Result {
        let deadline = ContinuousClock.now + timeout
        while try !hasEnded(by: deadline) { try await Task.sleep(for: .milliseconds(20)) }
        return finished(status: reapedStatus ?? 0)
    }

    /// One look at the process for `wait` and `waitBlocking` (which differ only in how they
    /// pause): true once it has ended (and is reaped); past `deadline` it is killed and
    /// the call throws with its output.
    private func hasEnded(by deadline: ContinuousClock.Instant) throws -> Bool {
        if !isRunning() { return true }
        guard ContinuousClock.now > deadline else { return false }
        killAndReapKeepingOutput()
        throw TimeoutError(output: output())
    }

    /// Sends SIGTERM and waits for the process to end, killing it at `timeout`; for a
    /// `defer` that cannot await, so it blocks the calling thread (a graceful stop takes
    /// about a second).
    func stop(timeout: Duration = .seconds(60)) {
        signal(SIGTERM)
        if (try? waitBlocking(timeout: timeout)) == nil { killAndReap() }
    }

    /// `wait` blocking the calling thread: only for teardown in a `defer`.
    func waitBlocking(timeout: Duration) throws -> AtriumBinary.Result {
        let deadline = ContinuousClock.now + timeout
        while try !hasEnded(by: deadline) { usleep(20_000) }
        return finished(status: reapedStatus ?? 0)
    }

    /// Kills the process and reaps it, for a `defer` that cannot await: after SIGKILL the
    /// reaping returns at once.
    func killAndReap() {
        guard reapedStatus == nil else { return }
        killAndReapKeepingOutput()
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    private func killAndReapKeepingOutput() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        reapedStatus = status
    }

    private func finished(status: Int32) -> AtriumBinary.Result {
        let code: Int32 = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let (out, err) = output()
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
        return .init(status: code, stdout: out, stderr: err)
    }

    func output() -> (String, String) {
        (
            String(decoding: FileManager.default.contents(atPath: stdoutPath) ?? Data(), as: UTF8.self),
            String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self)
        )
    }

    struct TimeoutError: Error, CustomStringConvertible {
        var output: (String, String)
        var description: String { "process timed out; stdout: \(output.0) stderr: \(output.1)" }
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
