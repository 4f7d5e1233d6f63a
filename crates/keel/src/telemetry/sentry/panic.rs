//! Panics are reported from the panic hook, while the stack still holds the frames that
//! panicked, through the hub of the request or job that panicked (its tags). Keel catches them (a
//! handler's panic is answered with a 500, a job's is a failed attempt), so the report says the
//! panic was handled.

use sentry::integrations::panic::PanicIntegration;
use sentry::protocol::Level;

/// The SDK's panic integration: an exception of type `panic`, the panic's message, the stack.
pub(super) fn integration() -> PanicIntegration {
    PanicIntegration::new().add_extractor(|info| {
        let mut event = PanicIntegration::new().event_from_panic_info(info);
        event.level = Level::Error;
        event.tags.insert("kind".into(), "panic".into());
        for exception in event.exception.values.iter_mut() {
            if let Some(mechanism) = exception.mechanism.as_mut() {
                mechanism.handled = Some(true);
            }
        }
        Some(event)
    })
}
