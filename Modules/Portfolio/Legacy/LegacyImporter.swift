import AtriumCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// Imports PortfoliAI's JSON stores (`users_db.json`, `conversations.json`) into a
/// tenant, in the one transaction the caller opened (scoped to the tenant, every owner
/// visible). Each record goes through a savepoint: a record the database refuses (a seat
/// limit) is rejected by its pointer and the rest goes on. Records already imported are
/// found in `portfolio_legacy_records` and left alone, or updated when their text changed.
struct LegacyImporter {
    static let usersFile = "users_db.json"
    static let conversationsFile = "conversations.json"
    let tenantID: UUID
    let today: String
    let connection: PostgresConnection
    let logger: Logger
    var report: LegacyReport
    /// Users of this import and of the tenant, by lowercased email.
    var users: [String: UUID] = [:]

    init(tenantID: UUID, today: String, dryRun: Bool, connection: PostgresConnection, logger: Logger) {
        (self.tenantID, self.today, self.connection, self.logger) = (tenantID, today, connection, logger)
        report = LegacyReport(dryRun: dryRun)
    }

    struct Rejected: Error {
        let reason: String
    }

    // MARK: - Records

    enum Outcome {
        case new
        case same(UUID?)
        case changed(UUID?)
    }

    func query(_ sql: PostgresQuery) async throws -> [PostgresRow] {
        try await connection.query(sql, logger: logger).collect()
    }

    /// Whether `pointer` of `file` was imported before, and as what.
    func outcome(_ file: String, _ pointer: String, raw: LegacyJSON) async throws -> Outcome {
        guard let row = try await query("SELECT raw = \(raw.text)::jsonb, target_id FROM portfolio_legacy_records WHERE file = \(file) AND pointer = \(pointer)").first
        else { return .new }
        let (same, target) = try row.decode((Bool, UUID?).self)
        return same ? .same(target) : .changed(target)
    }

    func remember(_ file: String, _ pointer: String, entity: String, raw: LegacyJSON, target: UUID?) async throws {
        _ = try await query(
            """
            INSERT INTO portfolio_legacy_records (tenant_id, file, pointer, entity, raw, target_id)
            VALUES (\(tenantID), \(file), \(pointer), \(entity), \(raw.text)::jsonb, \(target))
            ON CONFLICT (tenant_id, file, pointer) DO UPDATE SET raw = excluded.raw, target_id = excluded.target_id, updated_at = now()
            """)
    }

    /// Runs `body` for one record in a savepoint: a rejection or a database refusal rolls
    /// back that record alone and is reported by its pointer.
    mutating func record(_ file: String, _ pointer: String, entity: String, _ body: (inout LegacyImporter) async throws -> Void) async throws -> Bool {
        _ = try await query("SAVEPOINT legacy_record")
        do {
            try await body(&self)
            _ = try await query("RELEASE SAVEPOINT legacy_record")
            return true
        } catch {
            _ = try await query("ROLLBACK TO SAVEPOINT legacy_record")
            let reason = (error as? Rejected)?.reason ?? (error as? PSQLError)?.serverInfo?[.message] ?? (error as? AtriumError)?.detail ?? "\(error)"
            report.rejections.append(.init(file: file, pointer: pointer, message: reason))
            report.count(entity, \.rejected)
            return false
        }
    }

    mutating func warn(_ file: String, _ pointer: String, _ message: String) {
        report.warnings.append(.init(file: file, pointer: pointer, message: message))
    }

    /// Names the fields of `object` outside `known`: they stay in the raw record.
    mutating func unknownFields(_ object: LegacyJSON, known: Set<String>, _ file: String, _ pointer: String) {
        let unknown = (object.members ?? []).map(\.0).filter { !known.contains($0) }
        if !unknown.isEmpty { warn(file, pointer, "unknown fields kept in the raw record: \(unknown.joined(separator: ", "))") }
    }

    /// An entry's external id: its pointer, hashed when too long for the column.
    static func externalID(_ pointer: String) -> String {
        let id = "legacy:" + pointer
        guard id.utf8.count > 200 else { return id }
        return "legacy:sha256:" + SHA256.hash(data: Data(pointer.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `YYYY-MM-DD` from a date or an ISO 8601 date-time; nil for anything else.
    static func day(_ value: LegacyJSON?) -> String? {
        guard let text = value?.string, text.count >= 10 else { return nil }
        let day = String(text.prefix(10))
        return TradeDate.isValid(day) ? day : nil
    }

    // MARK: - users_db.json

    mutating func importUsers(_ document: LegacyJSON) async throws {
        let file = Self.usersFile
        guard let members = document.members else {
            report.rejections.append(.init(file: file, pointer: "", message: "the file must hold one object of users keyed by email"))
            return
        }
        for row in try await query("SELECT id, lower(email) FROM users") {
            let (id, email) = try row.decode((UUID, String).self)
            users[email] = id
        }
        var seen: [String: String] = [:]
        for (email, user) in members {
            let pointer = LegacyJSON.pointer(email)
            let lower = email.trimmingCharacters(in: .whitespaces).lowercased()
            if let first = seen[lower] {
                report.rejections.append(.init(file: file, pointer: pointer, message: "the same email as \(first) but for case; the first was imported"))
                report.count("users", \.rejected)
                continue
            }
            seen[lower] = pointer
            var owner: UUID?
            _ = try await record(file, pointer, entity: "users") { importer in owner = try await importer.importUser(lower, user, pointer) }
            guard let owner else { continue }
            if let profile = user["profile"], profile != .null {
                _ = try await record(file, pointer + "/profile", entity: "profiles") { importer in
                    try await importer.importProfile(profile, owner: owner, pointer: pointer + "/profile")
                }
            }
            if let portfolio = user["portfolio"], portfolio != .null {
                try await importPortfolio(portfolio, owner: owner, name: user["name"]?.string, pointer: pointer + "/portfolio")
            }
        }
    }

    mutating func importUser(_ email: String, _ user: LegacyJSON, _ pointer: String) async throws -> UUID {
        let file = Self.usersFile
        guard user.members != nil else { throw Rejected(reason: "a user must be an object") }
        guard email.count <= 254, email.split(separator: "@").count == 2, email.split(separator: "@").last?.contains(".") == true, !email.contains(" ") else {
            throw Rejected(reason: "'\(email)' is not an email address")
        }
        unknownFields(user, known: ["name", "password_hash", "created_at", "profile", "portfolio"], file, pointer)
        // The user's own fields; profile and portfolio are records of their own.
        let raw = LegacyJSON.object((user.members ?? []).filter { $0.0 != "profile" && $0.0 != "portfolio" })
        let name = user["name"]?.string.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        switch try await outcome(file, pointer, raw: raw) {
        case .same(let target?):
            report.count("users", \.unchanged)
            users[email] = target
            return target
        case .changed(let target?):
            _ = try await query("UPDATE users SET display_name = \(name) WHERE id = \(target)")
            try await remember(file, pointer, entity: "user", raw: raw, target: target)
            report.count("users", \.updated)
            return target
        default:
            break
        }
        if let existing = users[email] {
            warn(file, pointer, "\(email) is a user of the tenant already: linked, not created")
            try await remember(file, pointer, entity: "user", raw: raw, target: existing)
            report.count("users", \.unchanged)
            return existing
        }
        let hash = user["password_hash"]?.string
        let kept = hash.map(PasswordHasher.verifiesLegacyHash) ?? false
        let created = try await UserStore(logger: logger).create(
            tenantID: tenantID, email: email, passwordHash: kept ? hash : nil, roles: ["investor"], displayName: name, verified: true, on: connection)
        report.passwords.append(.init(
            email: email, treatment: kept ? "kept (upgraded to Argon2id at first login)" : "dropped (an unverifiable scheme): the user resets it by email"))
        users[email] = created.id
        try await remember(file, pointer, entity: "user", raw: raw, target: created.id)
        report.count("users", \.created)
        return created.id
    }

    mutating func importProfile(_ profile: LegacyJSON, owner: UUID, pointer: String) async throws {
        let file = Self.usersFile
        guard profile.members != nil else { throw Rejected(reason: "a profile must be an object") }
        unknownFields(
            profile, known: ["risk_tolerance", "investment_goals", "time_horizon", "expected_return_min", "expected_return_max", "survey_responses"], file,
            pointer)
        guard let tolerance = profile["risk_tolerance"]?.decimal, tolerance >= 0, tolerance <= 1 else {
            throw Rejected(reason: "risk_tolerance must be a number from 0 to 1")
        }
        let score = DecimalString(tolerance, scale: 2)
        let band = score.value < Decimal(34) / 100 ? "conservative" : score.value < Decimal(67) / 100 ? "moderate" : "aggressive"
        let horizonText = (profile["time_horizon"]?.string ?? "").lowercased()
        let horizon =
            horizonText.contains("short") || horizonText.contains("1-3") || horizonText.contains("< 3") ? "under_3y"
            : horizonText.contains("long") || horizonText.contains("10") || horizonText.contains("7") ? "7_15y" : "3_7y"
        let returns = (profile["expected_return_min"]?.decimal, profile["expected_return_max"]?.decimal)
        let low = returns.0.map { NSDecimalNumber(decimal: DecimalString.rounded($0 * 100, scale: 0)).intValue } ?? 0
        let high = returns.1.map { NSDecimalNumber(decimal: DecimalString.rounded($0 * 100, scale: 0)).intValue } ?? low
        guard high >= low else { throw Rejected(reason: "expected_return_max is below expected_return_min") }
        let goals = (profile["investment_goals"]?.elements ?? []).compactMap(\.string).map { String($0.prefix(100)) }.prefix(10)
        var answers: [String: String] = [:]
        for (question, answer) in profile["survey_responses"]?.members ?? [] { answers[String(question.prefix(100))] = String((answer.string ?? answer.text).prefix(100)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let answersJSON = String(decoding: try encoder.encode(answers), as: UTF8.self)
        let outcome = try await outcome(file, pointer, raw: profile)
        if case .same = outcome {
            report.count("profiles", \.unchanged)
            return
        }
        _ = try await query(
            """
            INSERT INTO portfolio_profiles AS p (tenant_id, owner_id, survey_version, answers, scorer, score, band, goals, horizon, return_min_bp, return_max_bp, points)
            VALUES (\(tenantID), \(owner), 1, \(answersJSON)::jsonb, 'legacy/1', \(score.text)::numeric, \(band), \(Array(goals)), \(horizon), \(low), \(high), '{}')
            ON CONFLICT (tenant_id, owner_id) DO UPDATE SET answers = excluded.answers, scorer = excluded.scorer, score = excluded.score, band = excluded.band,
                goals = excluded.goals, horizon = excluded.horizon, return_min_bp = excluded.return_min_bp, return_max_bp = excluded.return_max_bp,
                updated_at = now()
            """)
        try await remember(file, pointer, entity: "profile", raw: profile, target: owner)
        if case .changed = outcome { report.count("profiles", \.updated) } else { report.count("profiles", \.created) }
    }

    mutating func importPortfolio(_ portfolio: LegacyJSON, owner: UUID, name: String?, pointer: String) async throws {
        let file = Self.usersFile
        var portfolioID: UUID?
        var base = "USD"
        _ = try await record(file, pointer, entity: "portfolios") { importer in
            guard portfolio.members != nil else { throw Rejected(reason: "a portfolio must be an object") }
            importer.unknownFields(portfolio, known: ["currency", "positions", "withdrawals"], file, pointer)
            let currency = portfolio["currency"]?.string ?? "USD"
            guard CurrencyCodes.isKnown(currency) else { throw Rejected(reason: "currency '\(currency)' is not an active ISO 4217 code; nothing of this portfolio was imported") }
            base = currency
            let raw = LegacyJSON.object([("currency", .string(currency))])
            switch try await importer.outcome(file, pointer, raw: raw) {
            case .same(let target?):
                portfolioID = target
                importer.report.count("portfolios", \.unchanged)
            case .changed:
                throw Rejected(reason: "the currency changed since the first import, and the entries' costs were taken in it")
            default:
                let title = name.map { "\($0)'s portfolio" } ?? "Portfolio"
                let created = try await importer.query(
                    """
                    INSERT INTO portfolio_portfolios (tenant_id, owner_id, name, base_currency, cost_method)
                    VALUES (\(importer.tenantID), \(owner), \(String(title.prefix(200))), \(currency), 'fifo') RETURNING id
                    """)
                portfolioID = try created.first?.decode(UUID.self)
                try await importer.remember(file, pointer, entity: "portfolio", raw: raw, target: portfolioID)
                importer.report.count("portfolios", \.created)
            }
        }
        guard let portfolioID else { return }
        for (index, position) in (portfolio["positions"]?.elements ?? []).enumerated() {
            try await importPosition(position, portfolio: portfolioID, owner: owner, base: base, pointer: "\(pointer)/positions/\(index)")
        }
        for (index, withdrawal) in (portfolio["withdrawals"]?.elements ?? []).enumerated() {
            let at = "\(pointer)/withdrawals/\(index)"
            _ = try await record(file, at, entity: "withdrawals") { importer in
                importer.unknownFields(withdrawal, known: ["amount", "date", "notes"], file, at)
                guard let amount = withdrawal["amount"]?.decimal, amount > 0 else { throw Rejected(reason: "amount must be a number above 0") }
                guard let date = Self.day(withdrawal["date"]) else { throw Rejected(reason: "date must be a date (YYYY-MM-DD)") }
                let notes = String((withdrawal["notes"]?.string ?? "").prefix(2000))
                try await importer.entry(
                    at, entity: "withdrawals", raw: withdrawal, portfolio: portfolioID, owner: owner, kind: "withdrawal", date: date, symbol: nil, quantity: nil,
                    price: nil, amount: DecimalString(amount), currency: base, notes: notes)
            }
        }
        // Booked as recorded: a withdrawal above the cash is the old app's, kept with a warning.
        let entries = try await query(
            """
            SELECT id, kind, trade_date::text, symbol, quantity::text, price::text, amount::text, currency, fee::text, fx_rate::text, lots
            FROM portfolio_transactions WHERE portfolio_id = \(portfolioID) ORDER BY trade_date, entry_seq
            """
        ).map { row in
            let (id, kind, date, symbol, quantity, price, amount, currency, fee, fx, lots) = try row.decode(
                (UUID, String, String, String?, String?, String?, String?, String, String, String, [UUID]).self)
            func exact(_ text: String?) -> Decimal { text.flatMap { DecimalString($0)?.value } ?? 0 }
            return Ledger.Entry(
                id: id, kind: Ledger.Kind(rawValue: kind) ?? .deposit, date: date, symbol: symbol, quantity: exact(quantity), price: exact(price),
                amount: exact(amount), currency: currency, fee: exact(fee), fxRate: exact(fx), lots: lots)
        }
        if let booked = try? Ledger.book(entries, splits: [], method: .fifo, allowOverdraw: true) {
            for overdrawn in booked.overdrawn {
                let date = entries.first { $0.id == overdrawn.entry }?.date ?? ""
                warn(file, pointer, "the withdrawal of \(date) takes \(overdrawn.amount) \(overdrawn.currency) more than the ledger's cash: booked as recorded")
            }
        }
    }

    mutating func importPosition(_ position: LegacyJSON, portfolio: UUID, owner: UUID, base: String, pointer: String) async throws {
        let file = Self.usersFile
        var symbol: String?
        _ = try await record(file, pointer, entity: "instruments") { importer in
            importer.unknownFields(position, known: ["symbol", "company_name", "asset_type", "entries", "current_price", "manual_price"], file, pointer)
            let text = (position["symbol"]?.string ?? "").trimmingCharacters(in: .whitespaces).uppercased()
            if let problem = PortfolioValidation.symbolProblem(text) { throw Rejected(reason: "symbol \(problem)") }
            let type = position["asset_type"]?.string.flatMap(Instrument.AssetType.init(rawValue:)) ?? .stock
            let inserted = try await importer.query(
                """
                INSERT INTO portfolio_instruments (tenant_id, symbol, name, asset_type, currency)
                VALUES (\(importer.tenantID), \(text), \(String((position["company_name"]?.string ?? "").prefix(300))), \(type.rawValue), \(base))
                ON CONFLICT (tenant_id, symbol) DO NOTHING RETURNING 1
                """)
            importer.report.count("instruments", inserted.isEmpty ? \.unchanged : \.created)
            symbol = text
        }
        guard let symbol else { return }
        for (index, entry) in (position["entries"]?.elements ?? []).enumerated() {
            let at = "\(pointer)/entries/\(index)"
            _ = try await record(file, at, entity: "transactions") { importer in
                importer.unknownFields(entry, known: ["quantity", "price", "date"], file, at)
                guard let quantity = entry["quantity"]?.decimal else { throw Rejected(reason: "quantity must be a number") }
                guard quantity > 0 else { throw Rejected(reason: "quantity must be above 0 (a negative entry is a sale: record it as one)") }
                guard let price = entry["price"]?.decimal, price >= 0 else { throw Rejected(reason: "price must be a number of at least 0") }
                guard let date = Self.day(entry["date"]) else { throw Rejected(reason: "the entry has no date (YYYY-MM-DD), so it cannot be booked in order") }
                try await importer.entry(
                    at, entity: "transactions", raw: entry, portfolio: portfolio, owner: owner, kind: "buy", date: date, symbol: symbol,
                    quantity: DecimalString(quantity), price: DecimalString(price), amount: nil, currency: base, notes: "")
            }
        }
        if position["manual_price"]?.bool == true, let price = position["current_price"]?.decimal, price >= 0 {
            let at = "\(pointer)/current_price"
            _ = try await record(file, at, entity: "manual_prices") { importer in
                if case .same = try await importer.outcome(file, at, raw: .number(DecimalString(price).text)) {
                    importer.report.count("manual_prices", \.unchanged)
                    return
                }
                _ = try await importer.query(
                    """
                    INSERT INTO portfolio_manual_prices (tenant_id, portfolio_id, owner_id, symbol, on_date, price)
                    VALUES (\(importer.tenantID), \(portfolio), \(owner), \(symbol), \(importer.today)::date, \(DecimalString(price).text)::numeric)
                    ON CONFLICT (tenant_id, portfolio_id, symbol, on_date) DO UPDATE SET price = excluded.price
                    """)
                try await importer.remember(file, at, entity: "manual_price", raw: .number(DecimalString(price).text), target: portfolio)
                importer.report.count("manual_prices", \.created)
            }
        }
    }

    /// One ledger entry, by its pointer: created, left as it is, or changed to the record's values.
    mutating func entry(
        _ pointer: String, entity: String, raw: LegacyJSON, portfolio: UUID, owner: UUID, kind: String, date: String, symbol: String?,
        quantity: DecimalString?, price: DecimalString?, amount: DecimalString?, currency: String, notes: String
    ) async throws {
        switch try await outcome(Self.usersFile, pointer, raw: raw) {
        case .same:
            report.count(entity, \.unchanged)
        case .changed(let target):
            _ = try await query(
                """
                UPDATE portfolio_transactions SET trade_date = \(date)::date, quantity = \(quantity?.text)::numeric, price = \(price?.text)::numeric,
                    amount = \(amount?.text)::numeric, notes = \(notes), updated_at = now()
                WHERE id = \(target)
                """)
            try await remember(Self.usersFile, pointer, entity: entity, raw: raw, target: target)
            report.count(entity, \.updated)
        case .new:
            let rows = try await query(
                """
                INSERT INTO portfolio_transactions (tenant_id, owner_id, portfolio_id, kind, trade_date, symbol, quantity, price, amount, currency, external_id, notes)
                VALUES (\(tenantID), \(owner), \(portfolio), \(kind), \(date)::date, \(symbol), \(quantity?.text)::numeric, \(price?.text)::numeric,
                    \(amount?.text)::numeric, \(currency), \(Self.externalID(pointer)), \(notes))
                RETURNING id
                """)
            try await remember(Self.usersFile, pointer, entity: entity, raw: raw, target: try rows.first?.decode(UUID.self))
            report.count(entity, \.created)
        }
    }

    // MARK: - conversations.json

    mutating func importConversations(_ document: LegacyJSON) async throws {
        let file = Self.conversationsFile
        guard let members = document.members else {
            report.rejections.append(.init(file: file, pointer: "", message: "the file must hold one object of conversation lists keyed by email"))
            return
        }
        for (email, list) in members {
            let pointer = LegacyJSON.pointer(email)
            guard let owner = users[email.trimmingCharacters(in: .whitespaces).lowercased()] else {
                report.rejections.append(.init(file: file, pointer: pointer, message: "no user has this email (in users_db.json or the tenant)"))
                report.count("conversations", \.rejected)
                continue
            }
            for (index, conversation) in (list.elements ?? []).enumerated() {
                let at = "\(pointer)/\(index)"
                var conversationID: UUID?
                _ = try await record(file, at, entity: "conversations") { importer in
                    importer.unknownFields(conversation, known: ["title", "created_at", "messages"], file, at)
                    let raw = LegacyJSON.object((conversation.members ?? []).filter { $0.0 != "messages" })
                    let title = String((conversation["title"]?.string).flatMap { $0.isEmpty ? nil : $0 }?.prefix(200) ?? "Conversation")
                    switch try await importer.outcome(file, at, raw: raw) {
                    case .same(let target):
                        conversationID = target
                        importer.report.count("conversations", \.unchanged)
                    case .changed(let target):
                        _ = try await importer.query("UPDATE portfolio_conversations SET title = \(title) WHERE id = \(target)")
                        conversationID = target
                        try await importer.remember(file, at, entity: "conversation", raw: raw, target: target)
                        importer.report.count("conversations", \.updated)
                    case .new:
                        let created = Self.timestamp(conversation["created_at"]) ?? Date()
                        let rows = try await importer.query(
                            """
                            INSERT INTO portfolio_conversations (tenant_id, owner_id, title, created_at, updated_at)
                            VALUES (\(importer.tenantID), \(owner), \(title), \(created), \(created)) RETURNING id
                            """)
                        conversationID = try rows.first?.decode(UUID.self)
                        try await importer.remember(file, at, entity: "conversation", raw: raw, target: conversationID)
                        importer.report.count("conversations", \.created)
                    }
                }
                guard let conversationID else { continue }
                for (position, message) in (conversation["messages"]?.elements ?? []).enumerated() {
                    let messageAt = "\(at)/messages/\(position)"
                    _ = try await record(file, messageAt, entity: "messages") { importer in
                        importer.unknownFields(message, known: ["role", "content", "timestamp"], file, messageAt)
                        guard let role = message["role"]?.string, role == "user" || role == "assistant" else {
                            throw Rejected(reason: "role must be user or assistant")
                        }
                        guard let content = message["content"]?.string, !content.isEmpty, content.count <= 20_000 else {
                            throw Rejected(reason: "content must be 1 to 20000 characters")
                        }
                        if case .same = try await importer.outcome(file, messageAt, raw: message) {
                            importer.report.count("messages", \.unchanged)
                            return
                        }
                        let at = Self.timestamp(message["timestamp"]) ?? Date()
                        let rows = try await importer.query(
                            """
                            INSERT INTO portfolio_messages (tenant_id, conversation_id, owner_id, role, content, responder, created_at)
                            VALUES (\(importer.tenantID), \(conversationID), \(owner), \(role), \(content), \(role == "assistant" ? "legacy" : nil), \(at))
                            RETURNING id
                            """)
                        try await importer.remember(file, messageAt, entity: "message", raw: message, target: try rows.first?.decode(UUID.self))
                        importer.report.count("messages", \.created)
                    }
                }
            }
        }
    }

    /// An ISO 8601 time as the old app wrote it (with or without a zone or fraction; UTC when none).
    static func timestamp(_ value: LegacyJSON?) -> Date? {
        guard var text = value?.string, text.count >= 19 else { return nil }
        if !(text.hasSuffix("Z") || text.dropFirst(19).contains("+") || text.dropFirst(19).contains("-")) { text += "Z" }
        return InputDomain.parseTimestamp(text.replacingOccurrences(of: " ", with: "T"))
    }
}
