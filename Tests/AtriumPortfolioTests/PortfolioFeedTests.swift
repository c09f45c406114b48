import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Prices from a feed: pushed as NDJSON, or dropped in the polled directory.
@Suite struct PortfolioFeedTests {
    @Test func pushedTicksCloseTheirDayAndBadLinesAreNamed() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL")
            let ticks = """
                {"symbol":"AAPL","price":"150.00","at":"2024-03-01T15:00:00Z"}
                {"symbol":"aapl","price":"151.25","at":"2024-03-01T20:59:00Z"}
                {"symbol":"AAPL","price":"149.00","at":"2024-03-01T18:00:00Z"}
                {"symbol":"MSFT","price":"400","date":"2024-03-01"}
                not json
                {"symbol":"AAPL","price":152,"date":"2024-03-04"}
                {"symbol":"AAPL","price":"153.10","date":"2024-03-04"}
                """
            let pushed = try await team.client.execute(
                uri: "\(PortfolioTeam.base)/market/ticks", method: .post,
                headers: [.authorization: "Bearer \(team.manager)", .contentType: "application/x-ndjson"], body: ByteBuffer(string: ticks))
            #expect(pushed.status == .ok, "\(String(buffer: pushed.body))")
            let outcome = json(pushed)
            #expect(outcome["accepted"] == 2)
            #expect(outcome["rejected"]?.array?.compactMap { $0["line"] } == [4, 5, 6])
            #expect(outcome["rejected"]?.array?.first?["reason"]?.string == "MSFT is not an instrument of this tenant")
            let closes = try await team.call(.get, "/market/instruments/AAPL/prices", team.ann)
            #expect(closes["closes"]?.array?.compactMap { $0["close"]?.string } == ["151.25", "153.10"], "the day's latest tick is its close")

            let plain = try await team.client.execute(
                uri: "\(PortfolioTeam.base)/market/ticks", method: .post,
                headers: [.authorization: "Bearer \(team.manager)", .contentType: "text/plain"], body: ByteBuffer(string: ticks))
            #expect(plain.status == .unsupportedMediaType)
            let investor = try await team.client.execute(
                uri: "\(PortfolioTeam.base)/market/ticks", method: .post,
                headers: [.authorization: "Bearer \(team.ann)", .contentType: "application/x-ndjson"], body: ByteBuffer(string: ticks))
            #expect(investor.status == .forbidden)
        }
    }

    @Test func theFeedDirectoryIsReadAndEachFileMarkedDone() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL")
            let root = FileManager.default.temporaryDirectory.appending(path: "atrium-feed-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            let folder = root.appending(path: "fund")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try #"{"symbol":"AAPL","price":"170.50","date":"2024-05-02"}"#.write(to: folder.appending(path: "2024-05-02.ndjson"), atomically: true, encoding: .utf8)
            try #"{"symbol":"NOPE","price":"1","date":"2024-05-03"}"#.write(to: folder.appending(path: "2024-05-03.ndjson"), atomically: true, encoding: .utf8)
            try await team.db.withApp { database in
                try await runJob(
                    "portfolio.feed.poll", of: PortfolioModule(), tenantID: team.tenant.id, payload: [String: String](), database: database,
                    environment: ["ATRIUM_PORTFOLIO_FEED_DIR": root.path()])
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: folder.path()).sorted()
            #expect(left == ["2024-05-02.ndjson.done", "2024-05-03.ndjson.done", "2024-05-03.ndjson.errors"])
            let errors = try String(contentsOf: folder.appending(path: "2024-05-03.ndjson.errors"), encoding: .utf8)
            #expect(errors.contains("1,\"NOPE is not an instrument of this tenant\""))
            let closes = try await team.call(.get, "/market/instruments/AAPL/prices", team.ann)
            #expect(closes["closes"]?.array?.first?["close"]?.string == "170.50")
        }
    }
}
