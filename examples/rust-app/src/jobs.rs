//! The application's typed job: it runs with Keel's job context (its database pool, attempt
//! number) and the application's own [`Kitchen`].

use keel::jobs::{AppJob, JobContext, JobFailure};
use serde::{Deserialize, Serialize};

use crate::{store, Kitchen};

/// Sends the card of a new recipe (here: records who sent it).
#[derive(Debug, Serialize, Deserialize)]
pub struct SendCard {
    /// The recipe whose card to send.
    pub recipe_id: String,
}

impl AppJob for SendCard {
    const KIND: &'static str = "recipes.send_card";
    type Context = Kitchen;

    async fn run(self, job: JobContext, kitchen: Kitchen) -> Result<(), JobFailure> {
        let marked = store::mark_card_sent(&job.db, &self.recipe_id, &kitchen.card_sender).await?;
        if !marked {
            return Err(JobFailure::permanent(format!(
                "no recipe {}",
                self.recipe_id
            )));
        }
        tracing::info!(recipe = %self.recipe_id, from = %kitchen.card_sender, "recipe card sent");
        Ok(())
    }
}
