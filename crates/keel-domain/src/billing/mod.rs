//! Billing as Keel models it, whatever the provider: the state an event describes and the
//! entitlements a user holds at a moment.

pub mod entitlements;
pub mod model;
