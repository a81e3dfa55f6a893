"""railtracks' own log records through loguru, the log file, and terminal safety (SPEC 4, 7)."""
