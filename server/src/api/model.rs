//! Request and response bodies of the jobs endpoints.

use crate::jobs::{Job, JobState, QueryStatus};

/// Starts an extraction: the CLI's `extract` flags as JSON.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    /// Directory of .sql files, inside the server's queries root.
    #[schema(
        example = "./queries",
        min_length = 1,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub queries_path: String,
    /// Directory of common_params.yaml and <Country>.yaml, inside the
    /// server's config root.
    #[schema(
        example = "./config",
        min_length = 1,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub config_path: String,
    /// Country whose parameters apply.
    #[schema(
        example = "Colombia",
        min_length = 1,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub country: String,
    /// A Unity Catalog Volume path (/Volumes/<catalog>/<schema>/<volume>[/...]),
    /// or a directory inside the server's output root.
    #[schema(
        example = "/Volumes/catalog/schema/volume",
        min_length = 1,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub destination: String,
    /// Only these queries (by name); all of them when empty or absent.
    #[serde(default)]
    #[schema(schema_with = super::constraints::query_names)]
    pub queries: Vec<String>,
    /// Replace existing output (otherwise such a query fails).
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::constraints::partition_column)]
    pub partition_on: Option<String>,
    /// How many ranges (default 4 with partition_on); alone, the count for
    /// the queries whose <name>.yaml has partition_on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::constraints::whole_number"
    )]
    #[schema(minimum = 1, maximum = 64, nullable = false)]
    pub partitions: Option<u32>,
}

/// A job was queued.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JobAccepted {
    pub job_id: String,
    pub state: JobState,
    /// Where to follow it.
    pub status_url: String,
}

/// A job: its state, what was asked, and each query's progress.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job_id: String,
    /// `extract`.
    pub kind: String,
    pub state: JobState,
    /// The user (from permissions.yaml) who started it.
    pub owner: String,
    /// What was asked (the POST /extract body).
    #[schema(value_type = ExtractRequest)]
    pub request: serde_json::Value,
    pub queries: Vec<QueryStatus>,
    /// Rows written, all queries.
    pub rows: u64,
    /// Parquet bytes written, all queries.
    pub bytes: u64,
    /// Part files written, all queries.
    pub files: u64,
    /// Why the job failed, was cancelled or interrupted.
    pub error: Option<String>,
    /// Rows read and written that disagree, per query (reported, not fatal).
    pub discrepancies: Vec<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl JobStatus {
    pub fn new(job: Job, queries: Vec<QueryStatus>) -> Self {
        JobStatus {
            rows: queries.iter().map(|q| q.rows).sum(),
            bytes: queries.iter().map(|q| q.bytes).sum(),
            files: queries.iter().map(|q| q.files.len() as u64).sum(),
            discrepancies: queries
                .iter()
                .filter_map(|q| q.discrepancy.as_ref().map(|d| format!("{}: {d}", q.query)))
                .collect(),
            queries,
            job_id: job.id,
            kind: job.kind,
            state: job.state,
            owner: job.owner,
            request: job.request,
            error: job.error,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// A page of jobs, newest first.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobStatus>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Filters and paging of GET /jobs.
#[derive(Clone, Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListJobs {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Jobs per page, 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
    /// Skip this many jobs: from the newest, or with `cursor`, after it.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}
