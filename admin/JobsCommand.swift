import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "Inspect the job queue; retry dead jobs; cancel waiting ones.",
        subcommands: [List.self, Retry.self, Cancel.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only jobs in this state: pending, running, succeeded, dead, canceled.") var state: String?
        @Option(help: "At most this many jobs.") var limit: Int = 50
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let validStates = ["pending", "running", "succeeded", "dead", "canceled"]
            if let state, !validStates.contains(state) {
                throw ValidationFailure("--state must be one of \(validStates.joined(separator: ", "))")
            }
            let logger = global.logger(defaultLevel: .warning)
            let (state, limit) = (state, limit)
            let jobs = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                try await connection.withPlatformTransaction(logger: logger) {
                    try await JobQueue(logger: logger).list(state: state, limit: limit, on: $0)
                }
            }
            if json {
                try Console.json(jobs)
            } else {
                Console.table(["id", "kind", "state", "attempts", "run at", "last error"], jobs.map {
                    [$0.id.uuidString.lowercased(), $0.kind, $0.state, "\($0.attempts)/\($0.maxAttempts.map(String.init) ?? "-")", Console.timestamp($0.runAt),
                     String(($0.lastError ?? "-").prefix(60))]
                })
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a dead or canceled job back in the queue with fresh attempts.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run() async throws { try await change(id, global: global, verb: "retried") { try await $0.retry($1, on: $2) } }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a pending or running job.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run() async throws { try await change(id, global: global, verb: "canceled") { try await $0.cancel($1, on: $2) } }
    }

    static func change(
        _ text: String, global: GlobalOptions, verb: String,
        _ action: @escaping @Sendable (JobQueue, UUID, PostgresConnection) async throws -> Bool
    ) async throws {
        guard let id = UUID(uuidString: text) else { throw ValidationFailure("'\(text)' is not a job id") }
        let logger = global.logger(defaultLevel: .warning)
        let changed = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
            try await connection.withPlatformTransaction(logger: logger) { try await action(JobQueue(logger: logger), id, $0) }
        }
        guard changed else { throw ValidationFailure("no job \(text) in a state that can be \(verb)") }
        Console.line("\(verb) \(text)")
    }
}
