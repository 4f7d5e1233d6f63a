-- Durable jobs, schedule ticks, circuit breakers and runtime flags.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    queue             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    args              TEXT NOT NULL DEFAULT '{}',
    state             TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    run_at            INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 20,
    timeout_ms        INTEGER NOT NULL,
    unique_key        TEXT,
    breaker_key       TEXT,
    last_error        TEXT,
    locked_by         TEXT,
    lease_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    attempted_at      INTEGER,
    finished_at       INTEGER
);
CREATE INDEX jobs_fetch_idx ON jobs (queue, priority, run_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE UNIQUE INDEX jobs_unique_live_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');
CREATE INDEX jobs_failed_idx ON jobs (queue, kind) WHERE state IN ('retryable', 'discarded');

-- One lease per worker process, renewed while it lives: when one expires, the jobs its worker
-- held are returned. (A lease per job would cost an index entry on every claim.)
CREATE TABLE job_leases (
    worker      TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE job_breakers (
    key         TEXT PRIMARY KEY,
    failures    INTEGER NOT NULL DEFAULT 0,
    open_until  INTEGER
);

CREATE TABLE schedule_ticks (
    name      TEXT NOT NULL,
    fire_at   INTEGER NOT NULL,
    job_id    INTEGER,
    fired_at  INTEGER NOT NULL,
    PRIMARY KEY (name, fire_at)
);

CREATE TABLE flags (
    name        TEXT PRIMARY KEY,
    enabled     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
);
