import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

@Suite("Migrator")
struct MigratorTests {
    let logger = TestDatabase.logger

    @Test func appliesKernelMigrationsOnceAndRecordsThem() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let migrator = Migrator(migrations: try Migration.kernel(), logger: logger)
        let first = try await db.withOwner { try await migrator.migrate($0) }
        let second = try await db.withOwner { try await migrator.migrate($0) }
        #expect(first.map(\.fileName) == (try Migration.kernel()).map(\.fileName))
        #expect(Array(first.map(\.fileName).prefix(3)) == ["0001_platform.sql", "0002_tenants.sql", "0003_jobs.sql"])
        #expect(second.isEmpty)
        let status = try await db.withOwner { try await migrator.status($0) }
        #expect(status.allSatisfy { $0.state == "applied" })
        let observed19 = try await db.withOwner { try await migrator.isCurrent($0) }
        #expect(observed19)
    }

    @Test func changedMigrationStopsStartUpNamingTheFile() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        var changed = try ModuleRegistry([NotesModule()]).allMigrations()
        let index = try #require(changed.firstIndex { $0.fileName == "0001_notes.sql" })
        changed[index].sql += "\n-- edited after release\n"
        let migrator = Migrator(migrations: changed, logger: logger)
        let error = await #expect(throws: ConfigurationError.self) {
            try await db.withOwner { try await migrator.migrate($0) }
        }
        #expect(error?.description.contains("0001_notes.sql") == true)
        #expect(error?.description.contains("notes") == true)
        let status = try await db.withOwner { try await migrator.status($0) }
        #expect(status.first { $0.file == "0001_notes.sql" }?.state == "changed")
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let migrations = try ModuleRegistry([NotesModule()]).allMigrations()
        let applied = try await withThrowingTaskGroup(of: [Migration].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await withPostgresConnection(db.owner, logger: logger) { connection in
                        try await Migrator(migrations: migrations, logger: logger).migrate(connection)
                    }
                }
            }
            var all: [Migration] = []
            for try await result in group { all += result }
            return all
        }
        #expect(applied.count == migrations.count)
        #expect(Set(applied.map(\.fileName)).count == migrations.count)
        let recorded = try await db.withOwner { connection in
            try await connection.query("SELECT count(*)::int FROM atrium_migrations", logger: logger).collect().first?.decode(Int.self)
        }
        #expect(recorded == migrations.count)
    }

    @Test func failingMigrationRollsBackAndNamesTheFile() async throws {
        let db = try await TestDatabase.create(migrate: false)
        let broken = try Migration.kernel() + [
            Migration(owner: "broken", version: 1, fileName: "0001_broken.sql", sql: "CREATE TABLE half (id int);\nSELECT * FROM no_such_table;")
        ]
        let error = await #expect(throws: ConfigurationError.self) {
            try await db.withOwner { try await Migrator(migrations: broken, logger: logger).migrate($0) }
        }
        #expect(error?.description.contains("0001_broken.sql") == true)
        let halfExists = try await db.withOwner { connection in
            try await connection.query("SELECT to_regclass('half') IS NOT NULL", logger: logger).collect().first?.decode(Bool.self)
        }
        #expect(halfExists == false)
    }

    @Test func migrationFilesMustBeNumberedAndUnique() throws {
        #expect(throws: ConfigurationError.self) { try Migration.fromFiles([(name: "tables.sql", sql: "")], owner: "x") }
        #expect(throws: ConfigurationError.self) {
            try Migration.fromFiles([(name: "0001_a.sql", sql: ""), (name: "0001_b.sql", sql: "")], owner: "x")
        }
        let ordered = try Migration.fromFiles([(name: "0010_b.sql", sql: ""), (name: "0002_a.sql", sql: "")], owner: "x")
        #expect(ordered.map(\.version) == [2, 10])
    }
}
