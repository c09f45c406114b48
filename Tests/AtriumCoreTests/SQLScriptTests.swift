@testable import AtriumCore
import Testing

@Suite("Splitting migration files into statements")
struct SQLScriptTests {
    @Test func splitsAtTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (note text DEFAULT 'x;y');
            /* block; comment */ CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
            DO $body$ BEGIN PERFORM 1; END $body$;
            SELECT "weird;name" FROM a WHERE note = 'it''s; fine';
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix("DEFAULT 'x;y')"))
        #expect(statements[1].contains("$$ SELECT 1; $$"))
        #expect(statements[2].contains("PERFORM 1; END $body$"))
        #expect(statements[3].contains("'it''s; fine'"))
    }

    @Test func ignoresCommentOnlyTailAndParameterPlaceholders() {
        let statements = SQLScript.statements(in: "SELECT $1::int;\n-- trailing comment\n")
        #expect(statements == ["SELECT $1::int"])
    }
}
