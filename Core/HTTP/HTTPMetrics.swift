import Hummingbird
import Prometheus

/// Request counts and latency histograms by route template (never by raw path, so
/// ids do not explode the label set).
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let registry: PrometheusCollectorRegistry

    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "requests", unitName: "total", helpText: "HTTP requests by route, method and status") }
    static var duration: MetricNameDescriptor { MetricNameDescriptor(namespace: "atrium", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "HTTP request latency by route and method") }
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let series = self.series(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code)
        series.requests.increment()
        series.duration.record(ContinuousClock.now - start)
        return response
    }

    struct SeriesKey: Hashable, Sendable {
        /// Tests run several applications, each with its own registry, in one process.
        var registry: ObjectIdentifier
        var route: String
        var method: String
        var status: Int
    }

    struct Series: Sendable {
        /// Held so that the registry, while remembered, cannot be freed and its address
        /// given to another one.
        var registry: PrometheusCollectorRegistry
        var requests: Counter
        var duration: DurationHistogram
    }

    /// One route's counter and histogram. The registry finds a series under its lock by
    /// hashing the name and labels; asked on every request by both event loops, that lock
    /// was where the loops queued. The handles are remembered per thread instead.
    private func series(route: String, method: String, status: Int) -> Series {
        Self.known.value(for: SeriesKey(registry: ObjectIdentifier(registry), route: route, method: method, status: status)) {
            Series(
                registry: registry,
                requests: registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]),
                duration: registry.makeDurationHistogram(descriptor: Self.duration, labels: [("route", route), ("method", method)], buckets: Self.buckets))
        }
    }

    /// One for the process: each memo takes a thread-specific key, of which a process
    /// has about a thousand.
    private static let known = ThreadLocalMemo<SeriesKey, Series>(limit: 4_096)
}
