//! The test harness's own tests, in one binary: the fakes of third parties behave like the real
//! services, and `TestApp` hands tests the app's services, clock and jobs.

// Tests, one module per area.
mod fake_idp;
mod fake_revenuecat;
mod fake_sentry;
mod test_app;
