import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO

/// `GET sales/contacts/export`: every contact the caller may see as CSV, streamed in
/// pages of 5,000 (keyset on id), each read in its own short transaction under the
/// caller's scope — memory stays at one page whatever the table's size.
enum ContactExport {
    static let pageSize = 5_000
    static let header = ["id", "email", "first_name", "last_name", "phone", "company_id", "tags", "external_id", "owner_id", "updated_at"]

    static func response(_ request: TenantRequest, scope: Ownership) async throws -> Response {
        let logger = request.logger
        let body = ResponseBody { writer in
            var buffer = ByteBuffer()
            CSVWriter.appendRow(header, to: &buffer)
            var after: UUID?
            while true {
                // After the handler returned, each block is a short transaction of its own
                // from the pool, scoped by the kernel to what the caller may see.
                let page = try await request.transaction { transaction in
                    try await transaction.connection.query(
                        """
                        SELECT id, coalesce(email, ''), first_name, last_name, coalesce(phone, ''), coalesce(company_id::text, ''),
                               array_to_string(tags, ';'), coalesce(external_id, ''), owner_id, updated_at
                        FROM sales_contacts
                        WHERE (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter)) AND (\(after)::uuid IS NULL OR id > \(after))
                        ORDER BY id LIMIT \(pageSize)
                        """, logger: logger
                    ).collect().map { try $0.decode((UUID, String, String, String, String, String, String, String, UUID, Date).self) }
                }
                for (id, email, first, last, phone, company, tags, external, owner, updated) in page {
                    CSVWriter.appendRow(
                        [id.uuidString.lowercased(), email, first, last, phone, company, tags, external, owner.uuidString.lowercased(),
                         updated.formatted(.iso8601)], to: &buffer)
                }
                try await writer.write(buffer)
                buffer.clear()
                guard page.count == pageSize, let last = page.last else { break }
                after = last.0
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"contacts.csv\""], body: body)
    }
}
