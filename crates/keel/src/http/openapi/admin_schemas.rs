//! The schemas of the admin API's bodies (`http::admin`): jobs, queues, flags, schedules and
//! audit rows. Each mirrors the type or handler named above it.

use serde_json::{json, Map, Value};

use super::op::{nullable, schema_ref};

pub(super) const NAME_PATTERN: &str = "^[A-Za-z0-9._:-]{1,100}$";

pub(super) fn add(all: &mut Map<String, Value>) {
    let mut add = |name: &str, schema: Value| {
        all.insert(name.to_string(), schema);
    };
    add("JobState", job_state());
    add("Job", job());
    add("JobSpec", job_spec());
    add("Enqueued", enqueued());
    add("QueueStats", queue_stats());
    add("QueueList", queue_list());
    add("QueuePaused", queue_paused());
    add("QueueDrained", queue_drained());
    add("Flag", flag());
    add("FlagList", flag_list());
    add("FlagChange", flag_change());
    add("FlagSet", flag_set());
    add("Schedule", schedule());
    add("ScheduleList", schedule_list());
    add("AuditRow", audit_row());
}

/// `jobs::JobState`.
fn job_state() -> Value {
    json!({
        "type": "string",
        "enum": [
            "scheduled", "available", "running", "retryable", "completed", "discarded", "cancelled"
        ],
        "description": "`scheduled` → `available` → `running` → `completed`; a failed attempt \
            goes to `retryable` or, out of attempts, `discarded`; `cancelled` by a drain."
    })
}

/// `http::admin::jobs::job_json`.
fn job() -> Value {
    json!({
        "type": "object",
        "required": [
            "id", "queue", "kind", "state", "attempt", "max_attempts", "unique_key", "run_at",
            "created_at", "finished_at", "last_error"
        ],
        "properties": {
            "id": { "type": "integer", "format": "int64" },
            "queue": { "type": "string" },
            "kind": { "type": "string" },
            "state": schema_ref("JobState"),
            "attempt": { "type": "integer", "format": "int32", "minimum": 0 },
            "max_attempts": { "type": "integer", "format": "int32", "minimum": 1 },
            "unique_key": nullable(json!({ "type": "string" })),
            "run_at": {
                "type": "string",
                "format": "date-time",
                "description": "Not run before this time."
            },
            "created_at": { "type": "string", "format": "date-time" },
            "finished_at": nullable(json!({ "type": "string", "format": "date-time" })),
            "last_error": nullable(json!({
                "type": "string",
                "description": "The last failed attempt's error."
            }))
        }
    })
}

/// `jobs::JobSpec` (unknown fields are refused).
fn job_spec() -> Value {
    json!({
        "type": "object",
        "required": ["kind"],
        "additionalProperties": false,
        "properties": {
            "kind": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": "Which handler runs the job."
            },
            "args": {
                "description": "Any JSON (at most 256 KiB), decoded into the handler's type; `{}` \
                    when absent or null."
            },
            "queue": nullable(json!({
                "type": "string",
                "pattern": NAME_PATTERN,
                "default": "default"
            })),
            "priority": nullable(json!({
                "type": "integer",
                "minimum": -32768,
                "maximum": 32767,
                "default": 0,
                "description": "Lower runs first."
            })),
            "run_at": nullable(json!({
                "type": "string",
                "format": "date-time",
                "description": "Not run before this time; now when absent."
            })),
            "max_attempts": nullable(json!({
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 20
            })),
            "timeout_seconds": nullable(json!({
                "type": "integer",
                "minimum": 1,
                "maximum": 86400,
                "default": 300
            })),
            "unique_key": nullable(json!({
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "While a job with this key is live, enqueueing another returns it."
            })),
            "breaker_key": nullable(json!({
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "After 5 consecutive failures under one key, its jobs wait 60 s."
            }))
        }
    })
}

fn enqueued() -> Value {
    json!({
        "type": "object",
        "required": ["id", "deduplicated"],
        "properties": {
            "id": { "type": "integer", "format": "int64" },
            "deduplicated": {
                "type": "boolean",
                "description": "True when a live job held the unique key: `id` is that job."
            }
        }
    })
}

/// `ops::queues::QueueStat`.
fn queue_stats() -> Value {
    let mut properties = Map::new();
    for state in [
        "scheduled",
        "available",
        "running",
        "retryable",
        "completed",
        "discarded",
        "cancelled",
    ] {
        properties.insert(
            state.into(),
            json!({ "type": "integer", "format": "int64", "minimum": 0 }),
        );
    }
    properties.insert(
        "paused".into(),
        json!({ "type": "boolean", "description": "Whether the queue's flag is off." }),
    );
    let required: Vec<&String> = properties.keys().collect();
    json!({
        "type": "object",
        "description": "Jobs per state in one queue, and whether processing is paused.",
        "required": required,
        "properties": properties
    })
}

fn queue_list() -> Value {
    json!({
        "type": "object",
        "required": ["queues"],
        "properties": {
            "queues": {
                "type": "object",
                "description": "Every queue that is configured or holds jobs, by name.",
                "additionalProperties": schema_ref("QueueStats")
            }
        }
    })
}

fn queue_paused() -> Value {
    json!({
        "type": "object",
        "required": ["queue", "paused"],
        "properties": {
            "queue": { "type": "string" },
            "paused": { "type": "boolean" }
        }
    })
}

fn queue_drained() -> Value {
    json!({
        "type": "object",
        "required": ["queue", "cancelled"],
        "properties": {
            "queue": { "type": "string" },
            "cancelled": {
                "type": "integer",
                "minimum": 0,
                "description": "How many waiting jobs were cancelled."
            }
        }
    })
}

/// `flags::FlagView`.
fn flag() -> Value {
    json!({
        "type": "object",
        "required": ["name", "enabled", "source", "updated_at"],
        "properties": {
            "name": {
                "type": "string",
                "description": "`scheduler`, `enqueue`, `workers` or `queue:NAME`."
            },
            "enabled": { "type": "boolean" },
            "source": {
                "type": "string",
                "description": "`default` when never set, else who set it last."
            },
            "updated_at": nullable(json!({ "type": "string", "format": "date-time" }))
        }
    })
}

fn flag_list() -> Value {
    json!({
        "type": "object",
        "required": ["flags"],
        "properties": { "flags": { "type": "array", "items": schema_ref("Flag") } }
    })
}

fn flag_change() -> Value {
    json!({
        "type": "object",
        "required": ["enabled"],
        "additionalProperties": false,
        "properties": { "enabled": { "type": "boolean" } }
    })
}

fn flag_set() -> Value {
    json!({
        "type": "object",
        "required": ["name", "enabled"],
        "properties": {
            "name": { "type": "string" },
            "enabled": { "type": "boolean" }
        }
    })
}

/// `ops::queues::ScheduleRun`.
fn schedule() -> Value {
    json!({
        "type": "object",
        "required": ["name", "cron", "kind", "last_fired_at", "next_fire_at"],
        "properties": {
            "name": { "type": "string" },
            "cron": { "type": "string", "description": "The cron expression, in UTC." },
            "kind": { "type": "string", "description": "The kind of job each firing enqueues." },
            "last_fired_at": nullable(json!({ "type": "string", "format": "date-time" })),
            "next_fire_at": nullable(json!({ "type": "string", "format": "date-time" }))
        }
    })
}

fn schedule_list() -> Value {
    json!({
        "type": "object",
        "required": ["schedules"],
        "properties": { "schedules": { "type": "array", "items": schema_ref("Schedule") } }
    })
}

/// `store::audit::AuditRow`.
fn audit_row() -> Value {
    json!({
        "type": "object",
        "required": ["at", "actor", "action", "target", "metadata"],
        "properties": {
            "at": { "type": "string", "format": "date-time" },
            "actor": {
                "type": "string",
                "description": "`admin-token`, `user:ID`, `cli`, `scheduler-trigger` …"
            },
            "action": { "type": "string", "description": "e.g. `flag.set`, `job.enqueue`." },
            "target": nullable(json!({ "type": "string", "description": "e.g. `flag:workers`." })),
            "metadata": { "description": "What the action changed (JSON)." }
        }
    })
}
