import Foundation
public import Logging

/// Human-readable log lines on stderr, in swift-log's `StreamLogHandler` layout.
///
/// Unlike `StreamLogHandler`, which formats its metadata again each time a key is set,
/// this one formats only when a line is written. The request path sets metadata (request
/// id, tenant, principal, PostgresNIO's connection id on every query) many times per
/// request and, at the usual levels, writes nothing: that formatting was a few percent of
/// the server's CPU per request.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let rendered = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Self.timestamp()) \(event.level) \(label) :\(rendered) [\(event.source)] \(event.message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.time(includingFractionalSeconds: false).year().month().day().timeZone(separator: .omitted))
    }
}
