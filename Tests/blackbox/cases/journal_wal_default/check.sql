PRAGMA journal_mode;
