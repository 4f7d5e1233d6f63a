// Peer benchmark: BullMQ on Redis, same workload as `keel bench queue`.
//
// Measures, on a fresh queue (unique name, obliterated at the end):
//   1. insert:    N no-op jobs added with queue.addBulk in batches of 1,000 -> insert jobs/s
//   2. process:   one Worker with `concurrency: C`, no-op processor, drains the N jobs;
//                 timed from worker start until its 'completed' count reaches N -> processed jobs/s
//                 (completed jobs are kept, as Keel keeps them: BullMQ's default)
//   3. latency:   a fresh, idle, running worker; jobs added one at a time at R jobs/s for S s,
//                 each carrying its enqueue time t; the processor records now - t -> p50/p99 ms
// Prints one JSON line in the shape of `keel bench queue --json`, with "system":"bullmq".
//
// Usage: node bench.mjs [--jobs N] [--concurrency C] [--rate R] [--seconds S] [--timeout SECS]
// Redis: REDIS_URL (default redis://127.0.0.1:6379).
import { Queue, Worker } from 'bullmq';

const args = { jobs: 20000, concurrency: 50, rate: 200, seconds: 5, timeout: 600 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  const val = Number(argv[i + 1]);
  if (!(key in args) || !(val > 0)) {
    console.error(`bench.mjs: bad argument ${argv[i]} ${argv[i + 1] ?? ''}`);
    process.exit(2);
  }
  args[key] = val;
}
const { jobs: N, concurrency: C, rate: R, seconds: S } = args;

const connection = { url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' };
const name = `keel-bench-${process.pid}-${Date.now()}`;
// Wall-clock (epoch) milliseconds with sub-millisecond resolution; used on both sides of the latency.
const epochMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// Hard bound on the whole run: never hang (e.g. Redis gone mid-run).
setTimeout(() => {
  console.error(`bench.mjs: timed out after ${args.timeout}s (queue ${name} may be left in Redis)`);
  process.exit(3);
}, args.timeout * 1000).unref();

// `finished` resolves once `bump()` (called on each 'completed' event) has run `target` times.
function counter(target) {
  let n = 0, done;
  const finished = new Promise((r) => (done = r));
  if (target === 0) done();
  return { finished, bump: () => { if (++n === target) done(); } };
}

async function startWorker(processor, progress) {
  const worker = new Worker(name, processor, { connection, concurrency: C, autorun: false });
  worker.on('completed', progress.bump);
  worker.on('failed', (job, err) => { console.error(`bench.mjs: job failed: ${err?.message}`); process.exit(1); });
  worker.on('error', (err) => console.error(`bench.mjs: worker error: ${err?.message}`));
  await worker.waitUntilReady();
  return worker;
}

const queue = new Queue(name, { connection });
queue.on('error', (err) => console.error(`bench.mjs: queue error: ${err?.message}`));
await queue.waitUntilReady();

// 1. Insert.
let t0 = performance.now();
for (let i = 0; i < N; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(i + 1000, N); j++) batch.push({ name: 'noop', data: { i: j } });
  await queue.addBulk(batch);
}
const insertPerS = N / ((performance.now() - t0) / 1000);

// 2. Drain with a worker of concurrency C.
const drained = counter(N);
let worker = await startWorker(async () => {}, drained);
t0 = performance.now();
worker.run();
await drained.finished;
const processedPerS = N / ((performance.now() - t0) / 1000);
await worker.close();

// 3. Latency at a fixed rate against an idle, running worker.
const total = Math.round(R * S);
const samples = [];
const latencyDone = counter(total);
worker = await startWorker(async (job) => { samples.push(epochMs() - job.data.t); }, latencyDone);
worker.run();
await sleep(250); // let the worker settle into its blocking wait
const start = performance.now();
for (let i = 0; i < total; i++) {
  await sleep(start + (i * 1000) / R - performance.now()); // next send time, no drift
  await queue.add('latency', { t: epochMs() });
}
await latencyDone.finished;
await worker.close();

samples.sort((a, b) => a - b);
const pct = (p) => (samples.length ? samples[Math.max(0, Math.ceil(p * samples.length) - 1)] : null);
const round = (x, d) => (x == null ? null : Number(x.toFixed(d)));

await queue.obliterate({ force: true });
await queue.close();

console.log(JSON.stringify({
  system: 'bullmq',
  engine: 'redis',
  jobs: N,
  concurrency: C,
  insert_jobs_per_s: round(insertPerS, 1),
  processed_jobs_per_s: round(processedPerS, 1),
  latency_rate: R,
  latency_jobs: samples.length,
  latency_p50_ms: round(pct(0.5), 3),
  latency_p99_ms: round(pct(0.99), 3),
}));
