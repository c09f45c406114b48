import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PostgresNIO

/// `GET sales/contacts/export`: every contact the caller may see as CSV, streamed in
/// pages of 5,000 (keyset on id), each read in its own short transaction under the
/// caller's scope — memory stays at one page whatever the table's size.
enum ContactExport {
    static let pageSize = 5_000
    static let header = ["id", "email", "first_name", "last_name", "phone", "company_id", "tags", "external_id", "owner_id", "updated_at"]

    /// One exported contact, its fields as the CSV writes them.
    struct Row: Sendable {
        var id: UUID
        var fields: [String]

        init(decoding row: PostgresRow) throws {
            let (id, email, first, last, phone, company, tags, external, owner, updated) = try row.decode(
                (UUID, String, String, String, String, String, String, String, UUID, Date).self)
            self.id = id
            fields = [id.uuidString.lowercased(), email, first, last, phone, company, tags, external, owner.uuidString.lowercased(), updated.formatted(.iso8601)]
        }
    }

    static func response(_ request: TenantRequest) async throws -> Response {
        let body = ResponseBody { writer in
            var buffer = ByteBuffer()
            CSVWriter.appendRow(header, to: &buffer)
            var after: UUID?
            while true {
                // After the handler returned, each block is a short transaction of its own
                // from the pool, scoped by the kernel to what the caller may see.
                let page = try await request.transaction { try await ContactStore.exportPage(after: after, limit: pageSize, on: $0) }
                for row in page { CSVWriter.appendRow(row.fields, to: &buffer) }
                try await writer.write(buffer)
                buffer.clear()
                guard page.count == pageSize, let last = page.last else { break }
                after = last.id
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"contacts.csv\""], body: body)
    }
}
