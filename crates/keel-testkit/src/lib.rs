//! Test harness for Keel: a fresh database on either engine per test, an in-process app served
//! over real HTTP, and the built `keel` binary as a child process.

mod admin;
mod app;
mod cdn;
mod db;
mod fake_server;
mod idp;
mod process;
mod receiver;
mod revenuecat;
pub mod s3;
pub mod sentry;
mod wait;

pub use admin::{admin, send, Reply, PROBLEMS};
pub use app::{TestApp, TestAppBuilder};
pub use cdn::StaticFiles;
pub use db::{execute_detached, postgres_url, redis_url, TestDb};
pub use idp::{Alg, FakeIdp, KeyId};
pub use process::{free_port, KeelProcess};
pub use receiver::{Answer, Delivery, Receiver};
pub use revenuecat::FakeRevenueCat;
pub use s3::S3Server;
pub use sentry::{FakeSentry, Refusal};
pub use wait::{eventually, Condition};

/// Runs an async test body on each database engine. For every `name` given, it generates a
/// module `name` with two tests, `sqlite` and `postgres`, that call the function `name` of the
/// same scope with a fresh [`TestDb`] of that engine; write it just above that function:
///
/// ```ignore
/// keel_testkit::engine_test!(applies_everything);
/// async fn applies_everything(db: TestDb) { /* ... */ }
/// ```
///
/// The tests are named `<module>::applies_everything::sqlite` and `…::postgres`. The Postgres
/// variant uses `KEEL_TEST_POSTGRES_URL`; when it is unset the test passes with a notice, unless
/// `KEEL_TEST_REQUIRE_POSTGRES=1` (CI), where it fails.
#[macro_export]
macro_rules! engine_test {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::TestDb::sqlite()).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = $crate::TestDb::postgres().await else {
                        return;
                    };
                    super::$name(db).await
                }
            }
        )+
    };
}
