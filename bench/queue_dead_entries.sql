-- What a claim costs while the entries of jobs claimed earlier are still in the claim index: a
-- drain of 20,000 jobs, then one new job, claimed as the runner claims (the `next` part of its
-- statement), before and after VACUUM. Runs on a copy of `jobs` (same columns and indexes,
-- autovacuum off, dropped at the end), so any database Keel has migrated will do:
--
--   psql "$DATABASE_URL" -f bench/queue_dead_entries.sql
--
-- (with `options=-c search_path=...` in the URL when Keel's tables live in a schema of their own).
\set QUIET on
\pset footer off
DROP TABLE IF EXISTS keel_dead_entries_probe;
CREATE TABLE keel_dead_entries_probe (LIKE jobs INCLUDING ALL) WITH (autovacuum_enabled = false);
INSERT INTO keel_dead_entries_probe (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, created_at)
  SELECT 'q', 'k', '{}', 'available', 0, now() - interval '1 minute', 20, 1000, now()
  FROM generate_series(1, 20000);
UPDATE keel_dead_entries_probe SET state = 'running', locked_by = 'w';
UPDATE keel_dead_entries_probe SET state = 'completed', locked_by = NULL, finished_at = now();
INSERT INTO keel_dead_entries_probe (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, created_at)
  VALUES ('q', 'k', '{}', 'available', 0, now(), 20, 1000, now());
PREPARE claim AS
  SELECT id FROM keel_dead_entries_probe
  WHERE state IN ('available', 'scheduled', 'retryable') AND queue = 'q' AND run_at <= now()
  ORDER BY priority, run_at, id LIMIT 25 FOR UPDATE SKIP LOCKED;
\echo 'first claim after the drain (it marks the dead entries it passes):'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim;
\echo 'every later claim until VACUUM:'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim;
VACUUM keel_dead_entries_probe;
\echo 'after VACUUM:'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim;
DEALLOCATE claim;
DROP TABLE keel_dead_entries_probe;
