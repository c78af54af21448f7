import Store
import Testing

@Suite("SQL splitter", .timeLimit(.minutes(5)))
struct SQLSplitterTests {
    @Test("splits on semicolons and drops empty and comment-only statements")
    func basic() {
        let sql = """
            -- leading comment
            CREATE TABLE a (id int);
            ;
            /* only a comment */;
            INSERT INTO a VALUES (1)
            """
        #expect(SQLSplitter.split(sql) == ["-- leading comment\nCREATE TABLE a (id int)", "INSERT INTO a VALUES (1)"])
    }

    @Test("keeps semicolons inside quoted strings, escaped quotes and quoted identifiers")
    func quotes() {
        let sql = #"INSERT INTO t VALUES ('a;b', 'it''s; fine'); SELECT "we;ird" FROM t; SELECT E'x\';y'"#
        #expect(SQLSplitter.split(sql) == [
            "INSERT INTO t VALUES ('a;b', 'it''s; fine')", #"SELECT "we;ird" FROM t"#, #"SELECT E'x\';y'"#,
        ])
    }

    @Test("keeps dollar-quoted bodies whole, with or without a tag, and tells $1 parameters apart")
    func dollarQuotes() {
        let sql = """
            DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $$ not the end $$; $body$ LANGUAGE sql;
            PREPARE p AS SELECT $1; SELECT 3
            """
        let statements = SQLSplitter.split(sql)
        #expect(statements.count == 4)
        #expect(statements[0] == "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$")
        #expect(statements[1].hasSuffix("$body$ LANGUAGE sql"))
        #expect(statements[2] == "PREPARE p AS SELECT $1")
        #expect(statements[3] == "SELECT 3")
    }

    @Test("ignores semicolons in line comments and nested block comments")
    func comments() {
        let sql = """
            SELECT 1; -- a; b
            /* outer /* inner; */ still comment; */ SELECT 2;
            """
        let statements = SQLSplitter.split(sql)
        #expect(statements.count == 2)
        #expect(statements[0] == "SELECT 1")
        #expect(statements[1].hasSuffix("SELECT 2"))
    }

    @Test("the shipped migrations split into statements that each start with SQL")
    func shipped() throws {
        for migration in try Migration.bundled() {
            let statements = SQLSplitter.split(migration.sql)
            #expect(!statements.isEmpty)
            #expect(!statements.contains { $0.contains("$$") && $0.components(separatedBy: "$$").count % 2 == 0 })
        }
    }
}
