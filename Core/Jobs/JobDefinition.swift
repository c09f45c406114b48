public import Foundation
public import Logging

/// A kind of background work and the code that performs it.
public struct JobDefinition: Sendable {
    /// `<module>.<name>` for module jobs, `kernel.<name>` for the kernel's.
    public var kind: String
    /// Attempts before the job is moved to the dead letter state.
    public var maxAttempts: Int
    /// How long a worker may hold the job before another may take it over.
    public var lease: Duration
    /// First retry delay; each further retry doubles it (with jitter), up to `maxBackoff`.
    public var backoff: Duration
    public var maxBackoff: Duration
    public var handler: @Sendable (JobContext) async throws -> Void

    public init(
        kind: String, maxAttempts: Int = 5, lease: Duration = .seconds(300), backoff: Duration = .seconds(5),
        maxBackoff: Duration = .seconds(3600), handler: @escaping @Sendable (JobContext) async throws -> Void
    ) {
        self.kind = kind
        self.maxAttempts = maxAttempts
        self.lease = lease
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.handler = handler
    }

    /// The delay before attempt `attempt + 1`: `backoff * 2^(attempt-1)`, capped, with
    /// ±25% jitter so that jobs failing together do not retry together.
    public func retryDelay(afterAttempt attempt: Int, random: Double = Double.random(in: -1...1)) -> Duration {
        let base = Double(backoff.components.seconds) + Double(backoff.components.attoseconds) / 1e18
        let cap = Double(maxBackoff.components.seconds)
        let exponential = min(cap, base * pow(2, Double(max(0, attempt - 1))))
        let jittered = max(0, exponential * (1 + 0.25 * random))
        return .milliseconds(Int64(jittered * 1000))
    }
}

/// What a job handler receives.
public struct JobContext: Sendable {
    public var jobID: UUID
    public var kind: String
    /// The tenant the job belongs to, if it is a tenant job.
    public var tenantID: UUID?
    /// The JSON payload given at enqueue time.
    public var payload: Data
    public var attempt: Int
    public var logger: Logger
    public var database: Database
    /// Records usage from the job, in the job's own transactions.
    public var metering: Metering
    /// The realtime channels the installed modules declare (`transaction.notify` refuses others).
    public var channels: Set<String>
    /// The context of the module the job belongs to (`kernel` for the kernel's jobs).
    public var module: ModuleContext

    /// A job's context as a worker builds it: for running a handler in a test without a
    /// worker (AtriumTesting's `runJob`), or from a module's own tooling.
    public init(
        jobID: UUID = UUID(), kind: String, tenantID: UUID?, payload: Data = Data("{}".utf8), attempt: Int = 1, logger: Logger,
        database: Database, metering: Metering, channels: Set<String> = [], module: ModuleContext
    ) {
        self.jobID = jobID
        self.kind = kind
        self.tenantID = tenantID
        self.payload = payload
        self.attempt = attempt
        self.logger = logger
        self.database = database
        self.metering = metering
        self.channels = channels
        self.module = module
    }

    /// Decodes the payload with the API's JSON conventions.
    public func decodePayload<T: Decodable>(_ type: T.Type) throws -> T {
        try AtriumJSON.decoder.decode(type, from: payload)
    }
}

/// A recurring job: every `interval`, once for the platform or once per tenant that
/// has the owning module enabled.
public struct ScheduleDefinition: Sendable, Equatable {
    public var name: String
    public var kind: String
    public var interval: Duration
    public var perTenant: Bool

    public init(name: String, kind: String, every interval: Duration, perTenant: Bool) {
        self.name = name
        self.kind = kind
        self.interval = interval
        self.perTenant = perTenant
    }
}

/// Thrown by a job's handler that cannot go on before `delay`: an outside service said
/// when to come back (`Retry-After`), or a shared budget is spent until then. The job
/// runs again after `delay` and the attempt is not counted, so waiting as told never
/// moves a job to the dead letter; `reason` is kept as its last error.
public struct JobRetryLater: Error, CustomStringConvertible, Sendable {
    public var delay: Duration
    public var reason: String

    public init(after delay: Duration, reason: String) {
        self.delay = delay
        self.reason = reason
    }

    public var description: String { "retry in \(delay): \(reason)" }
}
