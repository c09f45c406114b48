import ArgumentParser
import AtriumCore
import Foundation

/// Measurements for `make bench`; not part of the operator's toolbox, so hidden from help.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Micro-benchmarks used by make bench.", shouldDisplay: false, subcommands: [PasswordHashing.self])

    struct PasswordHashing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "password-hashing", abstract: "Argon2id hashes per second with the default parameters, on the hashing pool.")
        @Option(help: "Seconds to measure.") var seconds: Double = 5
        @Option(help: "Hashes in flight at once.") var concurrency: Int = 8

        func run() async throws {
            let hasher = PasswordHasher()
            let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
            let start = ContinuousClock.now
            let count = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var done = 0
                        while ContinuousClock.now < deadline {
                            _ = try await hasher.hash("benchmark-password")
                            done += 1
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
            let elapsed = ContinuousClock.now - start
            let perSecond = Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            Console.line(String(format: "%.1f", perSecond))
        }
    }
}
