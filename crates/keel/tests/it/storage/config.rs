//! The storage settings' checks: each problem names its variable or `keel.toml`'s entry.

use keel_testkit::{TestApp, TestDb};

fn problems(env: &[(&str, &str)], toml: Option<&str>) -> String {
    let mut builder = TestApp::builder(TestDb::sqlite());
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    if let Some(toml) = toml {
        builder = builder.keel_toml(toml);
    }
    builder.try_settings().err().unwrap_or_default()
}

#[test]
fn bad_storage_settings_are_refused_naming_the_variable() {
    assert!(problems(&[("STORAGE_URL", "gs://bucket")], None).contains("STORAGE_URL"));
    assert!(problems(&[("STORAGE_URL", "s3://No_Such")], None).contains("not a bucket name"));
    let cdn = problems(&[("STORAGE_PUBLIC_BASE_URL", "cdn.example.com")], None);
    assert!(cdn.contains("STORAGE_PUBLIC_BASE_URL"), "{cdn}");
    let half = problems(&[("AWS_ACCESS_KEY_ID", "AKIA")], None);
    assert!(half.contains("AWS_SECRET_ACCESS_KEY"), "{half}");
    let cloudfront = problems(&[("STORAGE_CLOUDFRONT_KEY_ID", "K1")], None);
    assert!(
        cloudfront.contains("STORAGE_CLOUDFRONT_KEY_ID"),
        "{cloudfront}"
    );
    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let path = not_a_key.display().to_string();
    let bad_key = problems(
        &[
            ("STORAGE_CLOUDFRONT_KEY_ID", "K1"),
            ("STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE", &path),
            ("STORAGE_PUBLIC_BASE_URL", "https://cdn.example.com"),
        ],
        None,
    );
    assert!(
        bad_key.contains("STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE"),
        "{bad_key}"
    );
    assert!(!bad_key.contains("AAAA"), "{bad_key}");
    let rules = problems(
        &[],
        Some("[storage.uploads.\"audio/mpeg\"]\nmax_size = \"lots\"\n[storage]\nabandoned_after = \"soon\"\n"),
    );
    assert!(
        rules.contains("storage.uploads.\"audio/mpeg\".max_size"),
        "{rules}"
    );
    assert!(rules.contains("storage.abandoned_after"), "{rules}");
    let unknown = problems(&[], Some("[storage]\nmax = 1\n"));
    assert!(unknown.contains("max"), "{unknown}");
    assert_eq!(
        problems(&[("STORAGE_URL", "s3://fine-bucket/app")], None),
        ""
    );
}
