//! Actions on many jobs: a selection (the list's checkboxes) or everything a filter matches, at
//! most [`CAP`] jobs per action, after a confirmation page that says how many. Each touches only
//! the jobs whose state the action applies to, and writes its audit row in the same transaction.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::job_actions::{states_words, title, CAP, CAP_WORDS};
use super::job_filter::JobsFilter;
use super::layout;
use super::pages::see_other;
use super::refusal::Refusal;
use super::session::Change;
use crate::http::state::AppState;
use crate::jobs::JobAction;

fn action_of(change: &Change) -> Result<JobAction, Refusal> {
    JobAction::parse(change.field("action")).ok_or_else(Refusal::bad_form)
}

/// The selected jobs (`id` fields), each changed where its state allows the action.
pub async fn selection(State(state): State<AppState>, change: Change) -> Result<Response, Refusal> {
    let action = action_of(&change)?;
    let filter = JobsFilter::from_fields(|name| change.field(name).to_string());
    let ids = change
        .all("id")
        .map(|id| id.trim().parse::<i64>())
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|_| Refusal::bad_form())?;
    if ids.is_empty() {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No job was selected: tick the jobs to act on first.",
        ));
    }
    if ids.len() as i64 > CAP {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("At most {CAP_WORDS} jobs can be changed at once."),
        ));
    }
    let changed = state
        .queue
        .act_on_selection(action, &ids, &change.actor)
        .await?;
    let skipped = ids.len() - changed.len();
    Ok(see_other(&filter.page(&format!(
        "done={}&changed={}&skipped={skipped}",
        action.as_str(),
        changed.len()
    ))))
}

/// Everything the filter matches: first a page that says how many jobs the action will change
/// and asks to confirm; with `confirm=yes`, the change (at most [`CAP`] jobs).
pub async fn whole_filter(
    State(state): State<AppState>,
    change: Change,
) -> Result<Response, Refusal> {
    let action = action_of(&change)?;
    let f = JobsFilter::from_fields(|name| change.field(name).to_string());
    let filter = f.job_filter(CAP)?;
    if action.states_within(&filter.states).is_empty() {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "{} applies only to {} jobs, and this filter selects none of them.",
                title(action),
                states_words(action)
            ),
        ));
    }
    if change.field("confirm") == "yes" {
        let changed = state.queue.act(action, &filter, &change.actor).await?;
        return Ok(see_other(&f.page(&format!(
            "done={}&changed={}",
            action.as_str(),
            changed.len()
        ))));
    }
    let count = state.queue.count_for(action, &filter, CAP + 1).await?;
    let op = change.operator();
    let states: Vec<&str> = action
        .states_within(&filter.states)
        .iter()
        .map(|s| s.as_str())
        .collect();
    let body = html! {
        h1 { (title(action)) " every matching job?" }
        p { "Filter: " strong { (f.describe()) } ". " (title(action)) " applies to jobs that are " (states.join(", ")) "." }
        @if count == 0 {
            p.notice { "No job matches: there is nothing to " (action.as_str()) "." }
        } @else {
            p.confirm {
                @if count > CAP {
                    "More than " (CAP_WORDS) " jobs match. This changes the oldest " (CAP_WORDS) " of them; run it again for the rest."
                } @else {
                    "This " (action.as_str()) "s " strong.count { (count) } " " (if count == 1 { "job" } else { "jobs" }) "."
                }
            }
            form.inline method="post" action="/admin/jobs/bulk" {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="action" value=(action.as_str());
                input type="hidden" name="confirm" value="yes";
                (f.hidden())
                button.danger type="submit" { (title(action)) " " (count.min(CAP)) " " (if count == 1 { "job" } else { "jobs" }) }
            }
        }
        " "
        a href=(f.page("")) { "Cancel" }
    };
    Ok(layout::respond(
        StatusCode::OK,
        layout::page("Confirm", Some(&op), body),
    ))
}
