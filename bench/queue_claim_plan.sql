-- What planning costs the claim statement, and what the outcomes' join shape costs running it: a
-- queue of 20,000 jobs of which 25 are running, claimed and reported as a runner does (25 outcomes
-- written, 25 jobs claimed, in one statement), planned for its values each time and planned once
-- on the claims pool's settings; then the outcomes found by scanning the reports again for each
-- job (the shape before 2026-12-03); then the plan made once on an empty table, with and without
-- `enable_seqscan = off`. Runs on a copy of `jobs` (autovacuum off, dropped at the end):
--
--   psql "$DATABASE_URL" -f bench/queue_claim_plan.sql
\set QUIET on
\pset footer off
DROP TABLE IF EXISTS keel_claim_plan_probe;
CREATE TABLE keel_claim_plan_probe (LIKE jobs INCLUDING ALL) WITH (autovacuum_enabled = false);
INSERT INTO keel_claim_plan_probe (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, created_at)
  SELECT 'q', 'k', '{}', 'available', 0, now() - interval '1 minute', 20, 1000, now()
  FROM generate_series(1, 20000);
VACUUM ANALYZE keel_claim_plan_probe;
UPDATE keel_claim_plan_probe SET state = 'running', locked_by = 'w'
  WHERE id IN (SELECT id FROM keel_claim_plan_probe ORDER BY id LIMIT 25);

\set claim 'WITH next AS (SELECT id FROM keel_claim_plan_probe WHERE state IN (''available'', ''scheduled'', ''retryable'') AND queue = $7 AND run_at <= $5 AND (breaker_key IS NULL OR NOT EXISTS (SELECT 1 FROM job_breakers b WHERE b.key = keel_claim_plan_probe.breaker_key AND b.open_until > $5)) ORDER BY priority, run_at, id LIMIT $8 FOR UPDATE SKIP LOCKED) UPDATE keel_claim_plan_probe j SET state = ''running'', attempt = j.attempt + 1, attempted_at = $5, lease_expires_at = $9, locked_by = $6 WHERE j.id = ANY(ARRAY(SELECT id FROM next)) RETURNING j.id'
\set report 'UPDATE keel_claim_plan_probe j SET state = r.state, run_at = COALESCE(r.run_at, j.run_at), last_error = COALESCE(r.error, j.last_error), finished_at = $5, locked_by = NULL, lease_expires_at = NULL FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) AS r(id, state, run_at, error)'
\set params '(bigint[], text[], timestamptz[], text[], timestamptz, text, text, bigint, timestamptz)'
PREPARE by_reports :params AS WITH reported AS (:report WHERE j.id = r.id AND j.locked_by = $6 RETURNING j.id), claimed AS (:claim) SELECT count(*) FROM claimed;
PREPARE by_jobs :params AS WITH reported AS (:report WHERE j.id = ANY($1) AND j.id = r.id AND j.locked_by = $6 RETURNING j.id), claimed AS (:claim) SELECT count(*) FROM claimed;
\set running 'SELECT array_agg(id) AS ids, array_agg(''completed''::text) AS st, array_agg(NULL::timestamptz) AS ra, array_agg(NULL::text) AS er FROM keel_claim_plan_probe WHERE locked_by = ''w'' AND state = ''running'''
\set args '(:''ids'', :''st'', :''ra'', :''er'', now(), ''w'', ''q'', 25, now() + interval ''1 minute'')'

\echo 'planned for its values each time (a prepared statement before it settles on a plan):'
SET plan_cache_mode = force_custom_plan;
:running \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE by_reports :args;
\echo 'planned once, as on the claims pool (plan_cache_mode = force_generic_plan, enable_seqscan = off):'
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
:running \gset
EXECUTE by_reports :args;
:running \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE by_reports :args;
\echo 'the same, outcomes found by scanning the reports again for each job:'
:running \gset
EXECUTE by_jobs :args;
:running \gset
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE by_jobs :args;

\echo 'a plan made once on an empty table, without enable_seqscan = off (Seq Scan: it reads the whole table once the table has grown):'
TRUNCATE keel_claim_plan_probe;
ANALYZE keel_claim_plan_probe;
DEALLOCATE by_reports;
PREPARE by_reports :params AS WITH reported AS (:report WHERE j.id = r.id AND j.locked_by = $6 RETURNING j.id), claimed AS (:claim) SELECT count(*) FROM claimed;
RESET enable_seqscan;
EXPLAIN (COSTS OFF) EXECUTE by_reports ('{}', '{}', '{}', '{}', now(), 'w', 'q', 25, now());
\echo 'with enable_seqscan = off:'
DEALLOCATE by_reports;
PREPARE by_reports :params AS WITH reported AS (:report WHERE j.id = r.id AND j.locked_by = $6 RETURNING j.id), claimed AS (:claim) SELECT count(*) FROM claimed;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) EXECUTE by_reports ('{}', '{}', '{}', '{}', now(), 'w', 'q', 25, now());

RESET plan_cache_mode;
RESET enable_seqscan;
DEALLOCATE ALL;
DROP TABLE keel_claim_plan_probe;
