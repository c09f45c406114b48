import Foundation
import HTTPTypes

/// Builds the OpenAPI 3.1 document from the operations registered on the router.
enum OpenAPIDocument {
    static func build(operations: [OperationRecord], version: String) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        var operationIDs: Set<String> = []
        var components = ComponentSchemas()
        for operation in operations {
            var parameters: [JSONValue] = pathParameters(operation.path).map { name in
                ["name": .string(name), "in": "path", "required": true, "schema": name == "tenant" ? JSONSchema.string().json : pathSchema(name).json]
            }
            parameters += operation.query.map { query in
                ["name": .string(query.name), "in": "query", "required": false, "description": .string(query.description), "schema": query.schema.json]
            }
            if operation.idempotent {
                parameters.append([
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "Makes the create safe to retry: the first answer for a key is replayed for 24 hours; the same key with another body answers 422 idempotency_key_reused.",
                    "schema": ["type": "string", "minLength": 1, "maxLength": 200],
                ])
            }
            var entry: [String: JSONValue] = [
                "summary": .string(operation.summary),
                "operationId": .string(uniqueID(for: operation, taken: &operationIDs)),
                "tags": [.string(operation.tag)],
                "parameters": .array(parameters),
            ]
            if let permission = operation.permission {
                entry["x-atrium-permission"] = .string(permission)
            }
            // Every operation says who may call it: any caller (on a public route, anyone),
            // a permission, or owners of records.
            switch operation.access {
            case .anyCaller: entry["x-atrium-access"] = "any_caller"
            case .permission: entry["x-atrium-access"] = "permission"
            case .owned: entry["x-atrium-access"] = "owned"
            }
            if case .owned(let prefix, _) = operation.access {
                // Holding <prefix>.any instead of .own reaches every owner's records.
                entry["x-atrium-owned"] = ["own": .string(prefix + ".own"), "any": .string(prefix + ".any")]
            }
            if operation.authenticated {
                entry["security"] = [["bearer": []], ["apiKey": []]]
            }
            if let body = operation.requestBody {
                let schema = components.reference(body, named: operation.requestBodyName, tag: operation.tag)
                entry["requestBody"] = ["required": true, "content": ["application/json": ["schema": schema]]]
            } else if !operation.requestContentTypes.isEmpty {
                let content = Dictionary(uniqueKeysWithValues: operation.requestContentTypes.map { type in
                    (type, JSONValue.object(["schema": type == "application/octet-stream" ? ["type": "string", "format": "binary"] : ["type": "string"]]))
                })
                entry["requestBody"] = ["required": true, "content": .object(content)]
            }
            var responses: [String: JSONValue] = [:]
            let status = String(operation.successStatus)
            if operation.successStatus == 204 {
                responses[status] = ["description": "No content"]
            } else if operation.successStatus == 302 {
                responses[status] = ["description": "Redirect", "headers": ["Location": ["schema": ["type": "string", "format": "uri"]]]]
            } else {
                let schema = operation.responseContentType == "application/json"
                    ? operation.response.map { components.reference($0, named: operation.responseName, tag: operation.tag) } ?? JSONSchema.freeform.json
                    : ["type": "string"]
                responses[status] = ["description": "Success", "content": .object([operation.responseContentType: .object(["schema": schema])])]
            }
            responses["default"] = ["$ref": "#/components/responses/Problem"]
            entry["responses"] = .object(responses)
            paths[operation.path, default: [:]][operation.method.rawValue.lowercased()] = .object(entry)
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Atrium API",
                "version": .string(version),
                "description": "Multi-tenant SaaS backend: the kernel and every installed module.",
            ],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": [
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"],
                    "apiKey": ["type": "apiKey", "in": "header", "name": "X-Api-Key"],
                ],
                "schemas": .object(components.schemas.merging(["Problem": problemSchema]) { $1 }),
                "responses": [
                    "Problem": [
                        "description": "An RFC 9457 problem document.",
                        "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]],
                    ]
                ],
            ],
        ]
    }

    static var problemSchema: JSONValue {
        JSONSchema.object(
            properties: [
                "type": .string(format: "uri-reference"), "title": .string(), "status": .integer, "detail": .string(),
                "instance": .string(), "code": .string(),
                "errors": .array(.object(properties: ["field": .string(), "message": .string()], required: ["field", "message"])),
            ],
            required: ["type", "title", "status", "code"]
        ).json
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }

    private static func pathSchema(_ name: String) -> JSONSchema {
        name == "id" || name.hasSuffix("_id") ? .string(format: "uuid") : .string()
    }

    private static func uniqueID(for operation: OperationRecord, taken: inout Set<String>) -> String {
        let words = operation.path.split(separator: "/").filter { !$0.hasPrefix("{") && $0 != "v1" && $0 != "tenants" }
        var base = operation.method.rawValue.lowercased() + words.map { word in
            word.split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == "." }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        }.joined()
        if operation.path.hasSuffix("}") { base += "ById" }
        var candidate = base
        var counter = 2
        while !taken.insert(candidate).inserted {
            candidate = base + String(counter)
            counter += 1
        }
        return candidate
    }
}

/// The named object schemas of the document's `components`: a body or response whose
/// type has a name (`SchemaReflector.componentName`) is listed once and referenced by
/// every operation that uses it. Two different schemas under one name (two modules'
/// `Entry`) are told apart by their operation's tag (`GuestbookEntry`), then a number.
struct ComponentSchemas {
    private(set) var schemas: [String: JSONValue] = ["Problem": OpenAPIDocument.problemSchema]

    mutating func reference(_ schema: JSONSchema, named name: String?, tag: String) -> JSONValue {
        guard let name, case .object = schema else { return schema.json }
        let json = schema.json
        let tagged = tag.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + name
        var candidates = [name, tagged]
        candidates += (2...).lazy.prefix(100).map { tagged + String($0) }
        for candidate in candidates {
            if let existing = schemas[candidate] {
                if existing == json { return ["$ref": .string("#/components/schemas/\(candidate)")] }
                continue
            }
            schemas[candidate] = json
            return ["$ref": .string("#/components/schemas/\(candidate)")]
        }
        return json
    }
}
