//! The deck's SDK flow from Rust, against a running bridge:
//! extract a country to a Volume and wait for it, then submit a sync event
//! and follow it.
//!
//! ```sh
//! BRIDGE_URL=http://localhost:8000 BRIDGE_TOKEN=demo-colombia-token \
//!   cargo run -p sql-databricks-bridge-client --example rust_client
//! ```
//! Optional: BRIDGE_DESTINATION (default /Volumes/main/demo/landing).

use std::time::Duration;

use sql_databricks_bridge_client::{types, BridgeClient, BridgeError};

/// Runs the flow and returns what it printed.
pub async fn run(
    base_url: &str,
    token: &str,
    destination: &str,
) -> Result<Vec<String>, BridgeError> {
    let mut out = Vec::new();
    let client = BridgeClient::new(base_url, token)?;
    let job = client
        .extract(&types::ExtractRequest {
            queries_path: "./queries".into(),
            config_path: "./config".into(),
            country: "Colombia".into(),
            destination: destination.into(),
            queries: vec![],
            overwrite: Some(true),
            partition_on: None,
            partitions: None,
        })
        .await?;
    let status = client
        .wait_for_job(
            &job.job_id,
            Duration::from_millis(500),
            Duration::from_secs(300),
        )
        .await?;
    out.push(format!(
        "job {}: {:?}, {} rows",
        job.job_id, status.state, status.rows
    ));
    for q in &status.queries {
        out.push(format!(
            "  {}: {} rows -> {}",
            q.query,
            q.rows,
            q.output.clone().unwrap_or_default()
        ));
    }
    let event = client
        .submit_sync_event(&types::SubmitSyncEvent {
            operation: types::Operation::Upsert,
            source_table: "main.demo.calibrated_panel".into(),
            target_table: "KWP_Colombia.dbo.CalibratedPanel".into(),
            primary_keys: vec!["panel_id".into()],
            columns: Some(
                [
                    "panel_id",
                    "country",
                    "period",
                    "household_id",
                    "weight",
                    "spend",
                    "is_active",
                    "updated_at",
                ]
                .map(String::from)
                .to_vec(),
            ),
        })
        .await?;
    let mut status = client.get_sync_event(&event.event_id).await?;
    for _ in 0..600 {
        if matches!(
            status.status,
            types::EventStatus::Completed | types::EventStatus::Failed
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = client.get_sync_event(&event.event_id).await?;
    }
    out.push(format!(
        "sync event {}: {:?}, rows affected {:?}",
        event.event_id, status.status, status.rows_affected
    ));
    for e in client
        .list_sync_events(Some(types::EventStatus::Failed), Some(10))
        .await?
    {
        out.push(format!(
            "  failed {}: {}",
            e.event_id,
            e.error_message.unwrap_or_default()
        ));
    }
    Ok(out)
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("BRIDGE_URL").unwrap_or_else(|_| "http://localhost:8000".into());
    let token = std::env::var("BRIDGE_TOKEN")
        .map_err(|_| "set BRIDGE_TOKEN to a token from permissions.yaml")?;
    let dest =
        std::env::var("BRIDGE_DESTINATION").unwrap_or_else(|_| "/Volumes/main/demo/landing".into());
    for line in run(&url, &token, &dest).await? {
        println!("{line}");
    }
    Ok(())
}
