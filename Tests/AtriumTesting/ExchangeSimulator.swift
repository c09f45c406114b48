import AtriumCore
public import Foundation
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The Binance simulator (`Tests/ExchangeSimulator/exchange_sim.py`) as its own process
/// on a free loopback port. It runs on the test virtual environment's Python
/// (`ATRIUM_TEST_PYTHON`, which `make test` provides with aiohttp).
public final class ExchangeSimulator: Sendable {
    /// `http://127.0.0.1:PORT`: what `ATRIUM_CRYPTO_BINANCE_URL` is set to.
    public let url: String
    private let process: Mutex<RunningProcess>

    private init(url: String, process: sending RunningProcess) {
        self.url = url
        self.process = Mutex(process)
    }

    /// A running simulator; `stop` it when done (or use `with`).
    public static func start() async throws -> ExchangeSimulator {
        let python = try #require(ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"], "make test provides the simulator's Python (aiohttp)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "ExchangeSimulator/exchange_sim.py").path()
        // A free port can be taken by another test before the simulator binds it: a
        // simulator that exits is started again on another port.
        for _ in 0..<3 {
            let port = try LocalPort.free()
            let process = try RunningProcess(executable: python, arguments: [script, "--port", String(port)], environment: ProcessInfo.processInfo.environment)
            let simulator = ExchangeSimulator(url: "http://127.0.0.1:\(port)", process: process)
            let deadline = ContinuousClock.now + .seconds(30)
            while simulator.process.withLock({ $0.isRunning() }), ContinuousClock.now < deadline {
                if (try? await simulator.call("GET", "/api/v3/time").status) == 200 { return simulator }
                try await Task.sleep(for: .milliseconds(50))
            }
            simulator.stop()
        }
        throw ConfigurationError("the exchange simulator did not start")
    }

    /// Runs `body` with a simulator, stopped when it returns.
    public static func with<Result: Sendable>(_ body: @Sendable (ExchangeSimulator) async throws -> Result) async throws -> Result {
        let simulator = try await start()
        defer { simulator.stop() }
        return try await body(simulator)
    }

    public func stop() {
        process.withLock { $0.killAndReap() }
    }

    /// An account whose key and secret the simulator accepts.
    public func account(key: String, secret: String, balances: [String: String] = ["BTC": "1"], permissions: [String] = ["reading", "spot"]) async throws {
        let body = try JSONSerialization.data(withJSONObject: ["api_key": key, "api_secret": secret, "balances": balances, "permissions": permissions])
        let answer = try await call("POST", "/_sim/accounts", body: body)
        try #require(answer.status == 201, "the simulator did not create the account: \(answer.status)")
    }

    /// The key stops working, as when its owner deletes it at the exchange.
    public func revoke(key: String) async throws {
        _ = try await call("POST", "/_sim/accounts/\(key)/revoke")
    }

    /// The requests the simulator served, oldest first (method, path, query, api_key).
    public func requests() async throws -> [[String: Any]] {
        let answer = try await call("GET", "/_sim/requests")
        return try JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]] ?? []
    }

    public func call(_ method: String, _ path: String, body: Data? = nil) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: try #require(URL(string: url + path)))
        request.httpMethod = method
        request.httpBody = body
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}
