import Foundation

/// Runs a helper program (initdb, pg_ctl, psql) to completion.
///
/// It spawns and reaps the child itself with `posix_spawn` and `waitpid`: `pg_ctl start`
/// leaves a daemon holding the descriptors it inherited, which defeats pipe-based
/// capture, and Foundation's `Process` did not reap children here. When Atrium runs as
/// root, PostgreSQL's tools refuse to run, so they are started as the `postgres` OS
/// user through `runuser`.
public struct ProcessRunner: Sendable {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// The OS user to run as, or nil for the current user.
    var runAsUser: String?

    public init(runAsUser: String? = nil) {
        self.runAsUser = runAsUser
    }

    /// Runs the program with its output captured (stdin is /dev/null). With `timeout`, a
    /// program still running then is killed, and the call throws naming it.
    public func run(_ executable: String, _ arguments: [String], timeout: Duration? = nil) throws -> Result {
        let outputPath = FileManager.default.temporaryDirectory.appending(path: "atrium-\(UUID().uuidString).log").path()
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let status = try spawn(
            executable, arguments, environment: ProcessInfo.processInfo.environment, captureTo: outputPath,
            deadline: timeout.map { ContinuousClock.now + $0 })
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return Result(status: status, output: String(decoding: data, as: UTF8.self))
    }

    /// `run` for async callers: it waits for the program between sleeps instead of blocking
    /// a thread, since the threads async code runs on are as few as the cores, and a
    /// program that takes seconds would stall everything else scheduled there.
    public func run(_ executable: String, _ arguments: [String], timeout: Duration) async throws -> Result {
        let outputPath = FileManager.default.temporaryDirectory.appending(path: "atrium-\(UUID().uuidString).log").path()
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let (pid, program) = try start(executable, arguments, environment: ProcessInfo.processInfo.environment, captureTo: outputPath)
        let deadline = ContinuousClock.now + timeout
        var status: Int32? = nil
        while true {
            status = try Self.reapStep(pid, program: program, deadline: deadline)
            if status != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return Result(status: Self.exitCode(status ?? 0), output: String(decoding: data, as: UTF8.self))
    }

    /// Runs the program attached to this terminal (for `psql`), searching `PATH`.
    public func runInteractive(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> Int32 {
        try spawn(executable, arguments, environment: environment, captureTo: nil)
    }

    private func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], captureTo outputPath: String?,
        deadline: ContinuousClock.Instant? = nil
    ) throws -> Int32 {
        let (pid, program) = try start(executable, arguments, environment: environment, captureTo: outputPath)
        var status: Int32 = 0
        if let deadline {
            while true {
                if let ended = try Self.reapStep(pid, program: program, deadline: deadline) { return Self.exitCode(ended) }
                usleep(20_000)
            }
        } else {
            while waitpid(pid, &status, 0) == -1 {
                guard errno == EINTR else { throw ConfigurationError("cannot wait for \(program): \(String(cString: strerror(errno)))") }
            }
        }
        return Self.exitCode(status)
    }

    /// One look at the child: its wait status once it has ended, nil while it runs; past
    /// `deadline` it is killed and the call throws naming `program`. The sync and async
    /// waits differ only in how they pause between looks.
    private static func reapStep(_ pid: pid_t, program: String, deadline: ContinuousClock.Instant) throws -> Int32? {
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid { return status }
        if reaped == -1, errno != EINTR { throw ConfigurationError("cannot wait for \(program): \(String(cString: strerror(errno)))") }
        if ContinuousClock.now >= deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            throw ConfigurationError("\(program) did not finish in time and was stopped")
        }
        return nil
    }

    /// WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
    private static func exitCode(_ status: Int32) -> Int32 {
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Spawns the program (through `runuser` when running as another user); returns its
    /// pid and the program actually run, for messages.
    private func start(
        _ executable: String, _ arguments: [String], environment: [String: String], captureTo outputPath: String?
    ) throws -> (pid_t, String) {
        var argv = [executable] + arguments
        var program = executable
        if let user = runAsUser {
            program = "/usr/sbin/runuser"
            argv = [program, "-u", user, "--"] + argv
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let outputPath {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in cArguments { free(pointer) }
            for pointer in cEnvironment { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, program, &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else {
            throw ConfigurationError("cannot run \(program): \(String(cString: strerror(spawned)))")
        }
        return (pid, program)
    }
}
