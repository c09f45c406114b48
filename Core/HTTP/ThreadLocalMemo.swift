import NIOPosix

/// Values worked out once and then looked up on every request, remembered per thread.
///
/// A memo behind one lock is a point every request of every event loop passes through:
/// under load the loops met there, and `perf trace` showed a loop thread blocked on such
/// a lock for 1–12 ms at a time whenever the thread holding it had been descheduled,
/// with the whole loop's connections waiting behind it. Each thread here keeps its own
/// table, so a lookup takes no lock and shares no cache line; a value is worked out
/// once per thread instead of once per process, which suits values that are cheap to
/// make again and few (snake-case keys, metric handles).
///
/// Keep one memo per purpose for the life of the process (a `static`, or a property of a
/// singleton): each takes one of the process's thread-specific keys (about a thousand on
/// Linux), and what a freed memo held stays with its threads.
final class ThreadLocalMemo<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// One thread's entries. Only reachable through `tables` from the thread that made
    /// it, so never touched by two threads.
    private final class Table: @unchecked Sendable {
        var entries: [Key: Value] = [:]
    }

    private let tables = ThreadSpecificVariable<Table>()
    /// Entries a thread keeps at most; past it, values are made and not kept.
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// The value for `key` on this thread, made by `make` the first time.
    func value(for key: Key, orMake make: () -> Value) -> Value {
        let table = currentTable()
        if let known = table.entries[key] { return known }
        let made = make()
        if table.entries.count < limit { table.entries[key] = made }
        return made
    }

    /// How many entries the calling thread keeps (what the bound is tested by).
    var countOnThisThread: Int { currentTable().entries.count }

    private func currentTable() -> Table {
        if let table = tables.currentValue { return table }
        let table = Table()
        tables.currentValue = table
        return table
    }
}
