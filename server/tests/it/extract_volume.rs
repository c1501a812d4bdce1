//! `extract` into a Unity Catalog Volume of the Databricks double: files and
//! manifest land, Databricks reads the Parquet back with read_files, 429s
//! are retried, a missing volume or existing output is refused before any
//! SQL runs, and an overwrite that fails leaves the previous output whole.

use crate::common;

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

/// Every file under `dir`, relative to it, sorted.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
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
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], 3);
    // The manifest names the run; its parts are there, hidden from globs.
    let location = manifest["location"].as_str().unwrap().to_string();
    let run = manifest["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/Volumes/main/demo/landing/extracts/Colombia/tipos/_runs/{run}")
    );
    assert!(
        base.join("_runs")
            .join(&run)
            .join("part-00000.parquet")
            .is_file(),
        "{manifest}\n{:?}",
        walk(&base)
    );
    assert!(!base.join("part-00000.parquet").exists());
    // Databricks reads what was landed, where the manifest says.
    let rs = d
        .engine()
        .execute(
            &format!("SELECT count(*) AS n, max(c_nvarchar) AS s FROM read_files('{location}')"),
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
    // With it: replaced by a new run; the one before is kept until the
    // next switch (a reader that read the old manifest finds its parts),
    // and removed by it.
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &["--overwrite"],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let second = read(&base.join("_manifest.json"));
    let second_run = second["run_id"].as_str().unwrap().to_string();
    assert_ne!(second_run, run);
    let runs = |b: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(b.join("_runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(runs(&base), sorted(vec![run.clone(), second_run.clone()]));
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &["--overwrite"],
        "Bridge!Passw0rd",
        &env(&d),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let third = read(&base.join("_manifest.json"));
    let third_run = third["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        runs(&base),
        sorted(vec![second_run.clone(), third_run.clone()])
    );
    let (second, second_run) = (third, third_run);

    // An overwrite whose upload fails half-way: the previous output stays
    // current and complete, and the failed run leaves nothing behind.
    d.faults().internal_error(
        50,
        Some("/api/2.0/fs/files/Volumes/main/demo/landing/extracts/Colombia/tipos/_runs"),
    );
    let o = extract_with_env(
        &f,
        "/Volumes/main/demo/landing/extracts",
        &[
            "--overwrite",
            "--retry-base-ms",
            "10",
            "--retry-cap-ms",
            "20",
        ],
        "Bridge!Passw0rd",
        &env(&d),
    );
    d.faults().clear();
    assert!(!o.status.success());
    assert_eq!(read(&base.join("_manifest.json")), second);
    assert!(runs(&base).contains(&second_run));
    assert_eq!(runs(&base).len(), 2, "the failed run left nothing");
    for part in second["parts"].as_array().unwrap() {
        let file = base
            .join("_runs")
            .join(&second_run)
            .join(part["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len() as u64, part["bytes"].as_u64().unwrap());
        use sha2::Digest;
        assert_eq!(
            format!("{:x}", sha2::Sha256::digest(&bytes)),
            part["sha256"].as_str().unwrap()
        );
    }

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
