public import Foundation

/// How a child process ended: its exit status (128 + signal when killed) and output.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// A child process with its output captured to files, reaped with waitpid.
public final class RunningProcess {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String

    public init(executable: String, arguments: [String], environment: [String: String], stdin: String? = nil) throws {
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

    public func signal(_ signal: Int32) {
        if reapedStatus == nil { kill(pid, signal) }
    }

    /// The exit status of a process `isRunning` found ended (and reaped).
    private var reapedStatus: Int32?

    /// Whether the process is still running; an ended one is reaped (a zombie would still
    /// answer `kill(pid, 0)`).
    public func isRunning() -> Bool {
        if reapedStatus != nil { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        reapedStatus = status
        return false
    }

    /// Waits for the process to end, polling with `Task.sleep`: a test waiting for a child
    /// must not hold one of the few threads every other test's async work runs on (two on
    /// a two-core machine), or concurrent tests stall behind it.
    public func wait(timeout: Duration) async throws -> ProcessResult {
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
    public func stop(timeout: Duration = .seconds(60)) {
        signal(SIGTERM)
        if (try? waitBlocking(timeout: timeout)) == nil { killAndReap() }
    }

    /// `wait` blocking the calling thread: only for teardown in a `defer`.
    public func waitBlocking(timeout: Duration) throws -> ProcessResult {
        let deadline = ContinuousClock.now + timeout
        while try !hasEnded(by: deadline) { usleep(20_000) }
        return finished(status: reapedStatus ?? 0)
    }

    /// Kills the process and reaps it, for a `defer` that cannot await: after SIGKILL the
    /// reaping returns at once.
    public func killAndReap() {
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

    private func finished(status: Int32) -> ProcessResult {
        let code: Int32 = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let (out, err) = output()
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
        return .init(status: code, stdout: out, stderr: err)
    }

    public func output() -> (String, String) {
        (
            String(decoding: FileManager.default.contents(atPath: stdoutPath) ?? Data(), as: UTF8.self),
            String(decoding: FileManager.default.contents(atPath: stderrPath) ?? Data(), as: UTF8.self)
        )
    }

    public struct TimeoutError: Error, CustomStringConvertible {
        public init(output: (String, String)) { self.output = output }
        public var output: (String, String)
        public var description: String { "process timed out; stdout: \(output.0) stderr: \(output.1)" }
    }
}

