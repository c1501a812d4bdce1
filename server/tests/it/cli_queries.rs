//! `list-queries` and `show-params` as a user runs them: the real binary on
//! the repository's example queries and config, and on broken inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bridge(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SQLSERVER_HOST")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn list_queries_shows_names_and_parameters() {
    let o = bridge(&["list-queries", "--queries-path", "queries"], &repo());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("ventas") && out.contains("productos"), "{out}");
    assert!(out.contains("country_code"), "{out}");
}

#[test]
fn show_params_merges_and_renders() {
    let o = bridge(
        &[
            "show-params",
            "--config-path",
            "config",
            "--country",
            "Mexico",
            "--query",
            "ventas",
            "--json",
        ],
        &repo(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["params"]["database"]["value"], "KWP_Mexico");
    assert_eq!(v["params"]["schema"]["value"], "dbo");
    let sql = v["queries"][0]["sql"].as_str().unwrap();
    assert!(sql.contains("FROM KWP_Mexico.dbo.J_Ventas_MX"), "{sql}");
    assert!(sql.contains("pais = 'MX'"), "{sql}");
    assert!(!sql.contains('{'), "{sql}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("bridge-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("queries")).unwrap();
    std::fs::write(dir.join("config/common_params.yaml"), "schema: dbo\n").unwrap();
    std::fs::write(dir.join("config/Colombia.yaml"), "database: KWP\n").unwrap();
    std::fs::write(
        dir.join("queries/q.sql"),
        "SELECT 1\nFROM {database}.{schema}.t\nWHERE x = '{missing_key}'\n",
    )
    .unwrap();

    let o = bridge(
        &["show-params", "--country", "Colombia", "--query", "q"],
        &dir,
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("q.sql:3: parameter 'missing_key' is not set"),
        "{err}"
    );

    let o = bridge(&["show-params", "--country", "Narnia"], &dir);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("unknown country 'Narnia'") && err.contains("Colombia"),
        "{err}"
    );

    let o = bridge(
        &["show-params", "--country", "Colombia", "--query", "nope"],
        &dir,
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("unknown query 'nope'; available: q"), "{err}");

    let o = bridge(&["list-queries", "--queries-path", "does-not-exist"], &dir);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("does-not-exist") && err.contains("not a directory"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
