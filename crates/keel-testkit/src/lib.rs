//! Test harness for Keel: a fresh database on either engine per test, an in-process app served
//! over real HTTP, and the built `keel` binary as a child process.

mod app;
mod db;
mod fake_server;
mod idp;
mod process;
mod revenuecat;

pub use app::{TestApp, TestAppBuilder};
pub use db::{execute_detached, postgres_url, redis_url, TestDb};
pub use idp::{Alg, FakeIdp, KeyId};
pub use process::KeelProcess;
pub use revenuecat::FakeRevenueCat;

/// Generates one test per engine from one async body. `db` is a fresh [`TestDb`]:
///
/// ```ignore
/// keel_testkit::engine_tests! {
///     async fn applies_everything(db) { /* ... */ }
/// }
/// ```
///
/// The Postgres variant uses `KEEL_TEST_POSTGRES_URL`; when it is unset the test passes with a
/// notice, unless `KEEL_TEST_REQUIRE_POSTGRES=1` (CI), where it fails.
#[macro_export]
macro_rules! engine_tests {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $db = $crate::TestDb::sqlite();
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some($db) = $crate::TestDb::postgres().await else { return };
                    $body
                }
            }
        )*
    };
}
