import Foundation

/// Runs a helper program (initdb, pg_ctl) to completion and captures its output.
///
/// When Atrium runs as root, PostgreSQL's tools refuse to run, so they are started as
/// the `postgres` OS user through `runuser`.
struct ProcessRunner: Sendable {
    struct Result: Sendable {
        var status: Int32
        var output: String
    }

    /// The OS user to run as, or nil for the current user.
    var runAsUser: String?

    func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        if let user = runAsUser {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", user, "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
