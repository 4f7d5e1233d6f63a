-- Durable jobs, schedule ticks, circuit breakers and runtime flags.
CREATE TABLE jobs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    args              JSONB NOT NULL DEFAULT '{}',
    state             TEXT NOT NULL,
    priority          SMALLINT NOT NULL DEFAULT 0,
    run_at            TIMESTAMPTZ NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 20,
    timeout_ms        BIGINT NOT NULL,
    unique_key        TEXT,
    breaker_key       TEXT,
    last_error        TEXT,
    locked_by         TEXT,
    lease_expires_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    attempted_at      TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ
);
CREATE INDEX jobs_fetch_idx ON jobs (queue, priority, run_at, id)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE UNIQUE INDEX jobs_unique_live_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');
-- A queue table churns: every job is inserted, updated twice and deleted within a day. Vacuum it
-- early and without throttling, so dead index entries do not pile up ahead of the claims.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX jobs_failed_idx ON jobs (queue, kind) WHERE state IN ('retryable', 'discarded');

-- One lease per worker process, renewed while it lives: when one expires, the jobs its worker
-- held are returned. (A lease per job would cost an index entry on every claim.)
CREATE TABLE job_leases (
    worker      TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE job_breakers (
    key         TEXT PRIMARY KEY,
    failures    INTEGER NOT NULL DEFAULT 0,
    open_until  TIMESTAMPTZ
);

CREATE TABLE schedule_ticks (
    name      TEXT NOT NULL,
    fire_at   TIMESTAMPTZ NOT NULL,
    job_id    BIGINT,
    fired_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, fire_at)
);

CREATE TABLE flags (
    name        TEXT PRIMARY KEY,
    enabled     BOOLEAN NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  TEXT NOT NULL
);
