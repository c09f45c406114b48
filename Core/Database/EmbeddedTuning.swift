/// The embedded cluster's settings, sized from the machine it runs on.
///
/// PostgreSQL's defaults (128 MB of shared buffers, 4 MB of work memory, 1 GB of WAL
/// between checkpoints) suit a shared server far smaller than a developer's machine. The
/// embedded cluster takes an eighth of the memory for shared buffers (128 MB to 1 GB:
/// several clusters may run at once in a test suite), tells the planner half of it is
/// cache, gives sorts 16 MB, and spaces checkpoints out (4 GB of WAL or 15 minutes) so
/// a bulk import does not checkpoint every few seconds. `synchronous_commit` stays on:
/// a committed request is on disk.
struct EmbeddedTuning {
    var memoryBytes: UInt64
    /// Whether `pg_stat_statements` is preloaded (when the server ships it).
    var statStatements: Bool

    var options: [String: String] {
        let mebibytes = memoryBytes / (1 << 20)
        var options = [
            "shared_buffers": "\(min(max(mebibytes / 8, 128), 1024))MB",
            "effective_cache_size": "\(max(mebibytes / 2, 256))MB",
            "work_mem": "16MB",
            "maintenance_work_mem": "\(min(max(mebibytes / 32, 64), 512))MB",
            "max_wal_size": "4GB",
            "checkpoint_timeout": "15min",
            "checkpoint_completion_target": "0.9",
            "random_page_cost": "1.1",
            "synchronous_commit": "on",
        ]
        if statStatements { options["shared_preload_libraries"] = "pg_stat_statements" }
        return options
    }
}
