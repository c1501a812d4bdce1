//! `extract` into a Unity Catalog Volume of the Databricks double: files and
//! manifest land, Databricks reads the Parquet back with read_files, 429s
//! are retried, and a missing volume or existing output is refused before
//! any SQL runs.

mod common;

use bridge_sandbox::databricks::{self, DatabricksConfig};
use common::{extract_with_env, fixture};

fn double() -> databricks::DatabricksHandle {
    let d = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    d.engine()
        .run_script("CREATE CATALOG IF NOT EXISTS main; CREATE SCHEMA IF NOT EXISTS main.demo; CREATE VOLUME IF NOT EXISTS main.demo.landing")
        .unwrap();
    d
}

fn env(d: &databricks::DatabricksHandle) -> Vec<(&'static str, String)> {
    vec![
        ("DATABRICKS_HOST", d.url().to_string()),
        ("DATABRICKS_TOKEN", "dapi-test".to_string()),
    ]
}

#[test]
fn lands_in_the_volume_with_manifest_last() {
    let f = fixture("volume");
    let d = double();
    // One 429 with Retry-After on the way: retried, nothing lost.
    d.faults().throttle(1, 1, Some("/api/2.0/fs/files"));
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &["--compression", "snappy"],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let base = d
        .engine()
        .volumes_root()
        .join("main/demo/landing/extracts/Colombia/tipos");
    assert!(base.join("part-00000.parquet").is_file());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 3);
    // Databricks reads what was landed.
    let rs = d
        .engine()
        .execute(
            "SELECT count(*) AS n, max(c_nvarchar) AS s FROM read_files('/Volumes/main/demo/landing/extracts/Colombia/tipos/part-00000.parquet')",
            &Default::default(),
            &[],
        )
        .unwrap();
    let text = format!("{:?}", rs.rows);
    assert!(text.contains('3') && text.contains("ñandú"), "{text}");

    // Again without --overwrite: refused before any SQL runs.
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &[],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    // With it: replaced.
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &["--overwrite"],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A volume that does not exist.
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/nope",
        &[],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/Volumes/main/demo/nope does not exist"),
        "{err}"
    );
}
