//! Publishing to a Unity Catalog Volume, where the Files API has no rename:
//! the destination's shape, the checks before any SQL runs, a run's parts
//! uploaded beside the current output and switched in by its manifest, the
//! table load recorded in it, and old runs pruned.

use std::path::{Path, PathBuf};

use super::{lease, Part};

/// A Unity Catalog Volume destination: `/Volumes/<catalog>/<schema>/<volume>[/dir...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRoot(pub String);

impl VolumeRoot {
    /// Validates the path's shape (`volume_segments`), keeping the case of
    /// what was written; `None` when it is not a Volume path.
    pub fn parse(dest: &str) -> Result<Option<VolumeRoot>, String> {
        use crate::databricks::names::{volume_segments, VolumeShape};
        match volume_segments(dest) {
            None => Ok(None),
            Some(Err(VolumeShape::TooShort)) => Err(format!(
                "destination {dest}: a Volume path is /Volumes/<catalog>/<schema>/<volume>[/...]"
            )),
            Some(Err(VolumeShape::DotSegment)) => {
                Err(format!("destination {dest}: '.' and '..' are not allowed"))
            }
            Some(Ok(parts)) => Ok(Some(VolumeRoot(format!("/Volumes/{}", parts.join("/"))))),
        }
    }

    /// `/Volumes/<catalog>/<schema>/<volume>`.
    pub fn volume(&self) -> String {
        self.0.split('/').take(5).collect::<Vec<_>>().join("/")
    }

    pub fn query_dir(&self, country: &str, query: &str) -> String {
        format!("{}/{country}/{query}", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Databricks(#[from] crate::databricks::DatabricksError),
    #[error("destination volume {0} does not exist (create it in Unity Catalog first)")]
    NoVolume(String),
    #[error("output {0} already exists; pass --overwrite to replace it")]
    Exists(String),
    #[error("staging the manifest locally: {0}")]
    Local(String),
    #[error(transparent)]
    Lease(#[from] lease::LeaseError),
}

/// Fails early when the volume is missing or the output exists without
/// `overwrite`, before any SQL runs.
pub async fn check_volume(
    ws: &crate::databricks::Workspace,
    root: &VolumeRoot,
    country: &str,
    query: &str,
    overwrite: bool,
) -> Result<(), PublishError> {
    if ws.list_directory(&root.volume()).await?.is_none() {
        return Err(PublishError::NoVolume(root.volume()));
    }
    let dir = root.query_dir(country, query);
    if !overwrite {
        if let Some(entries) = ws.list_directory(&dir).await? {
            if !entries.is_empty() {
                return Err(PublishError::Exists(dir));
            }
        }
    }
    Ok(())
}

/// Where a published Volume output is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// `<root>/<country>/<query>`: its `_manifest.json` names the current run.
    pub dir: String,
    /// `<dir>/_runs/<run_id>`: the run's parts and its own manifest.
    pub location: String,
}

/// Uploads a finished local output to the volume without ever exposing a
/// mix of two outputs, though the Files API has no rename: the parts go to
/// a new run directory, `<dir>/_runs/<run_id>/` (hidden from Spark and
/// `read_files`, which skip paths starting with `_`); then
/// `<dir>/_manifest.json`, naming that run in `run_id` and `location`, is
/// replaced — the switch; then the runs older than the one it named before
/// are deleted. That one is kept until the next switch, so a reader that
/// read the manifest just before this switch still finds every part it
/// names. Until the switch the previous output stays whole and current; a
/// failed or cancelled upload leaves it so and removes its own run
/// directory. Readers read the run `_manifest.json` names (its `location`).
/// With a `lease` (the run's right to write this output) it is checked
/// before the switch: a run that lost it publishes nothing.
pub async fn publish_to_volume(
    ws: &crate::databricks::Workspace,
    local_dir: &Path,
    root: &VolumeRoot,
    country: &str,
    query: &str,
    parts: &[Part],
    lease: Option<&lease::Lease>,
) -> Result<Published, PublishError> {
    let dir = root.query_dir(country, query);
    let run_id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let location = format!("{dir}/_runs/{run_id}");
    let previous = current_run(ws, &dir).await?;
    let manifest = local_dir.join("_manifest.json");
    let upload = async {
        for p in parts {
            ws.upload_file(
                &format!("{location}/{}", p.file),
                &local_dir.join(&p.file),
                true,
            )
            .await?;
        }
        let mut m: serde_json::Value = std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        m["run_id"] = serde_json::json!(run_id);
        m["location"] = serde_json::json!(location);
        let text = serde_json::to_vec_pretty(&m).unwrap_or_default();
        let run_manifest = local_dir.join("_manifest.run.json");
        std::fs::write(&run_manifest, text).map_err(|e| PublishError::Local(e.to_string()))?;
        ws.upload_file(&format!("{location}/_manifest.json"), &run_manifest, true)
            .await?;
        if let Some(l) = lease {
            l.check().await?;
        }
        // The switch.
        ws.upload_file(&format!("{dir}/_manifest.json"), &run_manifest, true)
            .await?;
        Ok::<(), PublishError>(())
    };
    // A cancelled upload (the future dropped) leaves a run directory the
    // manifest never named; the next publish of this output removes it.
    if let Err(e) = upload.await {
        let _ = ws.delete_directory(&location).await;
        return Err(e);
    }
    prune(ws, &dir, &run_id, previous.as_deref(), lease.is_some()).await?;
    Ok(Published { dir, location })
}

/// Adds what the table load did to the output's manifest (and its run's
/// copy), so the files say which table version they became.
pub async fn record_table(
    ws: &crate::databricks::Workspace,
    dir: &str,
    outcome: &crate::tables::TableOutcome,
) -> Result<(), PublishError> {
    let path = format!("{dir}/_manifest.json");
    let Some(bytes) = ws.read_file(&path).await? else {
        return Ok(());
    };
    let mut m: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| PublishError::Local(e.to_string()))?;
    m["table"] = serde_json::to_value(outcome).map_err(|e| PublishError::Local(e.to_string()))?;
    let local = std::env::temp_dir().join(format!(
        "bridge-manifest-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let _cleanup = RemoveFileOnDrop(local.clone());
    std::fs::write(&local, serde_json::to_vec_pretty(&m).unwrap_or_default())
        .map_err(|e| PublishError::Local(e.to_string()))?;
    if let Some(location) = m["location"].as_str() {
        ws.upload_file(&format!("{location}/_manifest.json"), &local, true)
            .await?;
    }
    ws.upload_file(&path, &local, true).await?;
    Ok(())
}

struct RemoveFileOnDrop(PathBuf);

impl Drop for RemoveFileOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The run the output's manifest names now, if any.
async fn current_run(
    ws: &crate::databricks::Workspace,
    dir: &str,
) -> Result<Option<String>, PublishError> {
    Ok(ws
        .read_file(&format!("{dir}/_manifest.json"))
        .await?
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["run_id"].as_str().map(str::to_string)))
}

/// After the switch: removes the runs older than the one named before
/// (which is kept for readers that read the manifest before the switch):
/// earlier runs and runs left by failed or cancelled publishes, never named
/// by a manifest; and parts of the layout before runs
/// (`<dir>/part-*.parquet`). With the output's lease held no other publish
/// is under way, so every other run goes; without it, only runs older than
/// this one (a newer one may be another publish's, under way).
async fn prune(
    ws: &crate::databricks::Workspace,
    dir: &str,
    current: &str,
    previous: Option<&str>,
    leased: bool,
) -> Result<(), PublishError> {
    if let Some(runs) = ws.list_directory(&format!("{dir}/_runs")).await? {
        for e in runs {
            // Directory entries may end with `/`.
            let name = e
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            // Run ids start with their UTC time, so they sort by age; a
            // newer one belongs to a publish still under way.
            if e.is_directory
                && !name.is_empty()
                && name.as_str() != current
                && Some(name.as_str()) != previous
                && (leased || name.as_str() < current)
            {
                ws.delete_directory(&e.path).await?;
            }
        }
    }
    if let Some(entries) = ws.list_directory(dir).await? {
        for e in entries {
            let name = e.path.rsplit('/').next().unwrap_or("").to_string();
            if !e.is_directory && name.ends_with(".parquet") {
                ws.delete_file(&e.path).await?;
            }
        }
    }
    Ok(())
}
