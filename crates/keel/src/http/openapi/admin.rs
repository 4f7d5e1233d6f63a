//! The admin API under `/admin/api` (`http::admin`): queues, jobs, flags, schedules and the audit
//! trail. Every operation takes bearer `ADMIN_TOKEN` or an admin user's token, and every change
//! writes an audit row in the same transaction.

use serde_json::{json, Map, Value};

use super::admin_schemas::NAME_PATTERN;
use super::op::{json_answer, path_param, query_param, schema_ref, Op};

pub(super) fn add(paths: &mut Map<String, Value>) {
    paths.insert("/admin/api/queues".into(), json!({ "get": queues() }));
    for (action, summary, text) in QUEUE_ACTIONS {
        paths.insert(
            format!("/admin/api/queues/{{name}}/{action}"),
            json!({ "post": queue_action(action, summary, text) }),
        );
    }
    paths.insert(
        "/admin/api/jobs".into(),
        json!({ "get": jobs(), "post": enqueue() }),
    );
    for (action, summary, text) in JOB_ACTIONS {
        paths.insert(
            format!("/admin/api/jobs/{{id}}/{action}"),
            json!({ "post": job_action(action, summary, text) }),
        );
    }
    paths.insert("/admin/api/flags".into(), json!({ "get": flags() }));
    paths.insert(
        "/admin/api/flags/{name}".into(),
        json!({ "put": set_flag() }),
    );
    paths.insert("/admin/api/schedules".into(), json!({ "get": schedules() }));
    paths.insert(
        "/admin/api/schedules/{name}/trigger".into(),
        json!({ "post": trigger() }),
    );
    paths.insert("/admin/api/audit".into(), json!({ "get": audit() }));
}

/// An admin operation: the credentials it takes and the refusals every one of them may answer.
fn admin(tag: &str, id: &str, summary: &str) -> Op {
    Op::new(tag, id, summary)
        .security(json!([{ "adminToken": [] }, { "bearer": [] }]))
        .problem(
            401,
            "Neither `ADMIN_TOKEN` nor a user token that verifies (also when no `ADMIN_TOKEN` is \
             configured and no user token is sent).",
        )
        .problem(
            403,
            "`admin-required`: the user is not in `ADMIN_USER_IDS`.",
        )
        .problem(
            503,
            "`auth-unavailable`, `database-unavailable` or `timeout`.",
        )
}

/// The answers of an operation that reads a JSON body.
fn with_body(op: Op, schema: Value) -> Op {
    op.body(schema)
        .problem(
            400,
            "The body is not JSON (the detail gives line and column).",
        )
        .problem(413, "The body is larger than `BODY_LIMIT_BYTES`.")
        .problem(415, "The body is not `application/json`.")
}

fn queues() -> Value {
    admin("Queues", "listQueues", "Queue statistics")
        .text("Every queue that is configured or holds jobs: jobs per state, and whether paused.")
        .answer(200, json_answer("The queues.", schema_ref("QueueList")))
        .build()
}

const QUEUE_ACTIONS: [(&str, &str, &str); 3] = [
    (
        "pause",
        "Pause a queue",
        "Workers stop taking the queue's jobs (its `queue:NAME` flag goes off); running ones \
         finish.",
    ),
    (
        "resume",
        "Resume a queue",
        "Workers take the queue's jobs again.",
    ),
    (
        "drain",
        "Drain a queue",
        "Cancels every waiting job of the queue (scheduled, available, retryable).",
    ),
];

fn queue_action(action: &str, summary: &str, text: &str) -> Value {
    let (id, answer) = match action {
        "drain" => ("drainQueue", "QueueDrained"),
        "pause" => ("pauseQueue", "QueuePaused"),
        _ => ("resumeQueue", "QueuePaused"),
    };
    admin("Queues", id, summary)
        .text(text)
        .param(path_param(
            "name",
            "The queue.",
            json!({ "type": "string", "pattern": NAME_PATTERN }),
        ))
        .answer(200, json_answer("Done.", schema_ref(answer)))
        .problem(
            400,
            "The queue name is not 1 to 100 characters of `A-Z a-z 0-9 . _ : -`.",
        )
        .build()
}

fn jobs() -> Value {
    admin("Jobs", "listJobs", "List jobs")
        .text("Jobs newest first, filtered by state, kind and queue.")
        .param(query_param(
            "state",
            "Only jobs in this state.",
            schema_ref("JobState"),
        ))
        .param(query_param(
            "kind",
            "Only jobs of this kind.",
            json!({ "type": "string" }),
        ))
        .param(query_param(
            "queue",
            "Only jobs of this queue.",
            json!({ "type": "string" }),
        ))
        .param(query_param(
            "limit",
            "At most this many (clamped to 1 … 1000).",
            json!({ "type": "integer", "default": 50, "minimum": 1, "maximum": 1000 }),
        ))
        .answer(
            200,
            json_answer(
                "The jobs, newest first.",
                json!({ "type": "array", "items": schema_ref("Job") }),
            ),
        )
        .problem(
            400,
            "A parameter cannot be read (e.g. `limit` is not an integer).",
        )
        .problem(422, "`state` is not one of the seven states.")
        .build()
}

fn enqueue() -> Value {
    let op = admin("Jobs", "enqueueJob", "Enqueue a job").text(
        "Checks every field (all problems are answered together) and inserts the job with its \
         audit row.",
    );
    with_body(op, schema_ref("JobSpec"))
        .answer(
            201,
            json_answer("Enqueued (`deduplicated: false`).", schema_ref("Enqueued")),
        )
        .answer(
            200,
            json_answer(
                "A live job holds the unique key: it is answered (`deduplicated: true`), nothing \
                 is enqueued.",
                schema_ref("Enqueued"),
            ),
        )
        .problem(
            422,
            "A field is missing, unknown, of the wrong type or out of range; `errors` names each.",
        )
        .problem(
            503,
            "`enqueue-disabled`: the `enqueue` kill switch is off; or `auth-unavailable`, \
             `database-unavailable`, `timeout`.",
        )
        .build()
}

const JOB_ACTIONS: [(&str, &str, &str); 2] = [
    (
        "retry",
        "Retry a job",
        "A retryable, discarded or cancelled job runs again now.",
    ),
    (
        "discard",
        "Discard a job",
        "A waiting job (scheduled, available or retryable) is discarded.",
    ),
];

fn job_action(action: &str, summary: &str, text: &str) -> Value {
    let id = if action == "retry" {
        "retryJob"
    } else {
        "discardJob"
    };
    admin("Jobs", id, summary)
        .text(text)
        .param(path_param(
            "id",
            "The job's id.",
            json!({ "type": "integer", "format": "int64" }),
        ))
        .answer(200, json_answer("The job as it is now.", schema_ref("Job")))
        .problem(400, "The id is not an integer.")
        .problem(404, "No job has this id.")
        .problem(
            409,
            "`job-state-conflict`: the job's state does not allow this.",
        )
        .build()
}

fn flags() -> Value {
    admin("Flags", "listFlags", "List kill switches")
        .text(
            "`scheduler`, `enqueue`, `workers` and every `queue:NAME`; each process sees a \
             change within 5 seconds.",
        )
        .answer(200, json_answer("The flags.", schema_ref("FlagList")))
        .build()
}

fn set_flag() -> Value {
    let op = admin("Flags", "setFlag", "Set a kill switch")
        .text("Switches a flag on or off, with an audit row.")
        .param(path_param(
            "name",
            "`scheduler`, `enqueue`, `workers` or `queue:NAME`.",
            json!({ "type": "string" }),
        ));
    with_body(op, schema_ref("FlagChange"))
        .answer(200, json_answer("Set.", schema_ref("FlagSet")))
        .problem(
            422,
            "An unknown flag (`errors[].field` is `name`), or a body that is not \
             `{\"enabled\": bool}`.",
        )
        .build()
}

fn schedules() -> Value {
    admin("Schedules", "listSchedules", "List schedules")
        .text("Every schedule with its last and next firing.")
        .answer(
            200,
            json_answer("The schedules.", schema_ref("ScheduleList")),
        )
        .build()
}

fn trigger() -> Value {
    admin("Schedules", "fireSchedule", "Fire a schedule now")
        .text("Fires at most once per period of the schedule's cron expression.")
        .param(path_param(
            "name",
            "The schedule's name.",
            json!({ "type": "string" }),
        ))
        .answer(
            202,
            json_answer(
                "Fired, or already fired in this period.",
                schema_ref("Fired"),
            ),
        )
        .problem(404, "No schedule of this name.")
        .problem(
            503,
            "`enqueue-disabled`: the `enqueue` kill switch is off; or `auth-unavailable`, \
             `database-unavailable`, `timeout`.",
        )
        .build()
}

fn audit() -> Value {
    admin("Audit", "listAudit", "The audit trail")
        .text("Audit rows newest first: every admin action, from the API or the CLI.")
        .param(query_param(
            "limit",
            "At most this many (clamped to 1 … 1000).",
            json!({ "type": "integer", "default": 50, "minimum": 1, "maximum": 1000 }),
        ))
        .param(query_param(
            "target",
            "Only rows about this target (e.g. `flag:workers`, `queue:default`).",
            json!({ "type": "string" }),
        ))
        .answer(
            200,
            json_answer(
                "The rows, newest first.",
                json!({ "type": "array", "items": schema_ref("AuditRow") }),
            ),
        )
        .problem(
            400,
            "A parameter cannot be read (e.g. `limit` is not an integer).",
        )
        .build()
}
