-- The recipes application's own table. Portable SQL: the same text runs on SQLite and Postgres.
CREATE TABLE recipes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    card_sent_by TEXT
);
CREATE INDEX recipes_by_user ON recipes (user_id, created_at);
