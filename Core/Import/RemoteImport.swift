import Foundation
import HTTPTypes

extension ImportCommandOptions {
    /// The import as a tenant's user runs it against a server: the file is uploaded to the
    /// module's import route (with an Idempotency-Key, so a retried upload never imports
    /// twice), then the job is followed until it ends, with the same progress lines and
    /// summary as a local import. The rows belong to the logged-in user, as they would
    /// through the API.
    func runRemotely(_ client: inout RemoteClient, entity: String, moduleID: String, path: String) async throws {
        if owner != nil {
            throw RemoteFailure.usage("--owner is for this machine's database; through a server the imported rows are the logged-in user's")
        }
        guard let body = FileManager.default.contents(atPath: file) else { throw RemoteFailure.usage("cannot read \(file)") }
        let format = self.format ?? (file.lowercased().hasSuffix(".ndjson") || file.lowercased().hasSuffix(".jsonl") ? "ndjson" : "csv")
        var query = URLComponents()
        query.queryItems = [
            URLQueryItem(name: "entity", value: entity), URLQueryItem(name: "format", value: format), URLQueryItem(name: "mode", value: mode),
            URLQueryItem(name: "error_policy", value: errorPolicy),
        ] + (mapping.map { [URLQueryItem(name: "mapping", value: $0)] } ?? [])
        let started = ContinuousClock.now
        let terminal = Console.isTerminal
        let upload = try await client.send(
            .post, "\(moduleID)/\(path)?\(query.percentEncodedQuery ?? "")", body: body,
            contentType: format == "ndjson" ? "application/x-ndjson" : "text/csv", headers: [("Idempotency-Key", UUID().lowercasedString)],
            timeout: .seconds(600))
        var status = try Self.decodeStatus(upload.body, server: client.context.server)
        var shownRows: Int64 = -1
        while status.state != "succeeded" && status.state != "failed" {
            if status.rowsRead != shownRows {
                shownRows = status.rowsRead
                Self.show(remote: status, terminal: terminal)
            }
            try await Task.sleep(for: .milliseconds(500))
            status = try Self.decodeStatus(try await client.send(.get, "\(moduleID)/\(path)/\(status.id.lowercasedString)").body, server: client.context.server)
        }
        Self.show(remote: status, terminal: terminal)
        if terminal { Console.line() }
        let summary = FileImport.Summary(
            importID: status.id, owner: client.context.principal, rowsRead: status.rowsRead, rowsWritten: status.rowsWritten,
            rowsUnchanged: status.rowsUnchanged, rowsRejected: status.rowsRejected, firstErrors: status.firstErrors.map { ($0.line, $0.reason) },
            failure: status.failure)
        Self.report(summary, started: started, errorsPath: status.errorsUrl)
        if let failure = status.failure { throw RemoteFailure.failure(failure) }
    }

    static func decodeStatus(_ body: Data, server: String) throws -> ImportStatus {
        guard let status = try? AtriumJSON.decoder.decode(ImportStatus.self, from: body) else {
            throw RemoteFailure.failure("\(server) answered the import with something this console does not understand")
        }
        return status
    }

    /// Rows read so far and the job's state: the server reports no file position.
    static func show(remote status: ImportStatus, terminal: Bool) {
        let line = "progress: \(status.rowsRead) rows read, \(status.rowsWritten) written (\(status.state))"
        if terminal {
            Console.raw("\r" + line)
        } else {
            Console.line(line)
        }
    }
}
