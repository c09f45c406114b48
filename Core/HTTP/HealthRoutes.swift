import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Prometheus

/// `/healthz`, `/readyz` and `/metrics`: the routes load balancers and scrapers call.
struct HealthRoutes {
    let dependencies: ApplicationDependencies
    let collector: OperationCollector

    struct Health: Codable, Sendable, ResponseEncodable {
        var status: String
        var checks: [String: String]?
    }

    static var jobsByState: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "atrium", subsystem: "jobs", metricName: "queue", unitName: "jobs", helpText: "Jobs in the queue by state")
    }
    static var poolMax: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "atrium", subsystem: "db", metricName: "pool_max", unitName: "connections", helpText: "Connections the pool may open")
    }
    static var requestLeases: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "atrium", subsystem: "db", metricName: "request_connections", unitName: "total",
            helpText: "Connections leased by authenticated requests (the pipelined-BEGIN pool)")
    }
    static var requestRoundTrips: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "atrium", subsystem: "db", metricName: "request_round_trips", unitName: "total",
            helpText: "Database round trips made on authenticated requests' connections")
    }
    static var requestSyncCommits: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "atrium", subsystem: "db", metricName: "request_sync_commits", unitName: "total",
            helpText: "Authenticated requests' transactions of one statement, committed by its Sync (no BEGIN or COMMIT sent)")
    }

    static var requestRetries: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "atrium", subsystem: "db", metricName: "request_retries", unitName: "total",
            helpText: "Authenticated requests run again on a fresh connection after theirs died before anything of them reached it")
    }

    func register(on router: Router<AtriumRequestContext>) {
        let dependencies = self.dependencies
        let expected = Set(dependencies.expectedMigrations.map { "\($0.owner)/\($0.version)" })
        document("/healthz", "Liveness: the process is serving", response: Health.self)
        router.get("healthz") { _, _ in Health(status: "ok", checks: nil) }

        document("/readyz", "Readiness: the database answers and every migration is applied", response: Health.self)
        router.get("readyz") { _, context -> Response in
            var checks: [String: String] = [:]
            var ready = true
            do {
                let applied = try await dependencies.database.client.withConnection { connection in
                    var applied: Set<String> = []
                    for try await (owner, version) in try await connection.query(
                        "SELECT owner, version FROM atrium_migrations", logger: context.logger
                    ).decode((String, Int).self) {
                        applied.insert("\(owner)/\(version)")
                    }
                    return applied
                }
                checks["database"] = "ok"
                let missing = expected.subtracting(applied)
                checks["migrations"] = missing.isEmpty ? "ok" : "\(missing.count) pending"
                ready = missing.isEmpty
            } catch {
                context.logger.warning("readiness check failed", metadata: ["error": "\(String(reflecting: error))"])
                checks["database"] = "unreachable"
                ready = false
            }
            // Not a reason to take the server out of rotation (requests are served and their
            // counts kept), but what an operator must see: API-call counts not recorded yet.
            checks["api_call_counts"] = dependencies.apiCalls.failure.map { _ in
                "\(dependencies.apiCalls.unrecorded) calls not recorded yet: the last flush failed"
            } ?? "ok"
            checks["tenant_cache"] = dependencies.directory.isListening ? "listening" : "not listening (tenants read from the database)"
            let body = try AtriumJSON.encoder.encode(Health(status: ready ? "ok" : "unavailable", checks: checks))
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }

        document("/metrics", "Prometheus metrics in the text exposition format", response: String.self, contentType: "text/plain; version=0.0.4")
        router.get("metrics") { _, context -> Response in
            await Self.refreshGauges(dependencies, logger: context.logger)
            let text = dependencies.metrics.emitToBuffer()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }

    private func document<Output: Decodable>(_ path: String, _ summary: String, response: Output.Type, contentType: String = "application/json") {
        var record = OperationRecord(method: .get, path: path, summary: summary, tag: "operations", permission: nil, authenticated: false,
                                     query: [], requestBody: nil, response: SchemaReflector.schema(for: Output.self), successStatus: 200)
        record.responseContentType = contentType
        collector.add(record)
    }

    /// Job counts are read at scrape time so every process reports the shared queue.
    static func refreshGauges(_ dependencies: ApplicationDependencies, logger: Logger) async {
        dependencies.metrics.makeGauge(descriptor: poolMax).set(Double(dependencies.database.maximumConnections))
        if let requests = dependencies.database.requests {
            let counts = requests.unreportedCounts()
            dependencies.metrics.makeCounter(descriptor: requestLeases).increment(by: Int64(counts.leases))
            dependencies.metrics.makeCounter(descriptor: requestRoundTrips).increment(by: Int64(counts.roundTrips))
            dependencies.metrics.makeCounter(descriptor: requestSyncCommits).increment(by: Int64(counts.syncCommits))
            dependencies.metrics.makeCounter(descriptor: requestRetries).increment(by: Int64(counts.retries))
        }
        do {
            let counts = try await dependencies.database.withPlatformTransaction(logger: logger) { connection in
                var counts: [String: Int] = ["pending": 0, "running": 0, "succeeded": 0, "dead": 0, "canceled": 0]
                for try await (state, count) in try await connection.query(
                    "SELECT state, count(*)::int FROM jobs GROUP BY state", logger: logger
                ).decode((String, Int).self) {
                    counts[state] = count
                }
                return counts
            }
            for (state, count) in counts {
                dependencies.metrics.makeGauge(descriptor: jobsByState, labels: [("state", state)]).set(Double(count))
            }
        } catch {
            logger.warning("cannot read job counts for metrics", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
