import AtriumCore
import Foundation
import Logging

/// The polled directory: `ATRIUM_PORTFOLIO_FEED_DIR/<tenant slug>/*.ndjson`, read every
/// five minutes by `portfolio.feed.poll` (scheduled only when the setting is set). Each
/// file lands in one transaction and is renamed `*.ndjson.done`, with its rejected lines
/// beside it in `*.ndjson.errors`; a file that fails stays for the next run.
enum FeedDirectory {
    struct PollRequest: Codable, Sendable {}

    static let poll = JobKind<PollRequest>("portfolio.feed.poll")

    static var schedules: [ScheduleDefinition] {
        guard let directory = ProcessInfo.processInfo.environment["ATRIUM_PORTFOLIO_FEED_DIR"], !directory.isEmpty else { return [] }
        return [ScheduleDefinition(name: "portfolio.feed.poll", kind: poll.name, every: .seconds(300), perTenant: true)]
    }

    static var job: JobDefinition {
        poll.definition(maxAttempts: 3, lease: .seconds(300)) { context, _ in
            guard let root = context.module.settings.string("feed_dir") else { return }
            let slug = try await context.transaction { transaction in
                try await transaction.query("SELECT slug FROM tenants WHERE id = \(transaction.tenantID)").first.map { row in
                    var columns = RowReader(row)
                    let slug: String = try columns.next()
                    return slug
                }
            }
            guard let slug else { return }
            let folder = URL(fileURLWithPath: root).appending(path: slug)
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path())) ?? []).filter { $0.hasSuffix(".ndjson") }.sorted()
            for name in files {
                let file = folder.appending(path: name)
                guard let data = FileManager.default.contents(atPath: file.path()) else { continue }
                let outcome = try await context.transaction { transaction in
                    try await PriceFeed.ingest(String(decoding: data, as: UTF8.self), source: "file", on: transaction)
                }
                if outcome.rejectedCount > 0 {
                    let errors = "line,reason\n" + outcome.rejected.map { "\($0.line),\"\($0.reason.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: "\n") + "\n"
                    try errors.write(to: folder.appending(path: name + ".errors"), atomically: true, encoding: .utf8)
                }
                try FileManager.default.moveItem(at: file, to: folder.appending(path: name + ".done"))
                context.logger.info("feed file ingested", metadata: ["file": "\(name)", "written": "\(outcome.written)", "rejected": "\(outcome.rejectedCount)"])
            }
        }
    }
}
