//! One run writes an output at a time. Two jobs of one country and query,
//! sent together or overlapping, would otherwise upload into one directory
//! and the first to finish would prune the other's run mid-upload: the
//! manifest then names a run with parts missing, and a `full` table load
//! replaces the table with it.
//!
//! The lease lives beside the outputs it guards, in the destination itself
//! (a Volume, or a local directory), so every bridge that writes there sees
//! it: `<root>/_leases/<country>/<query>/` (lower case, as query and country
//! names are told apart case-insensitively), hidden from Spark and
//! `read_files` by its leading `_`. It is a chain of numbered records; the
//! newest decides. Taking the lease creates the next number with a
//! create-only write (the Files API's `overwrite=false`, a local
//! `create_new`), which exactly one of two racing takers wins; a record
//! that is released, or expired because its holder stopped renewing it,
//! lets the next number be taken. No record is ever replaced by another
//! taker, so two holders cannot both believe they hold it: a holder that
//! finds a newer number has lost it and stops before its next write. Its
//! holder renews it every third of its time to live while it works, and
//! checks it before each step that others could see (the manifest's switch,
//! the table load).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::databricks::Workspace;

/// How long a lease lasts without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("output {output} is being written by {owner} (since {since}, its lease runs to {until}); run it again once that finishes")]
    Busy {
        output: String,
        owner: String,
        since: String,
        until: String,
    },
    #[error("the lease on output {output} was lost ({why}); nothing more is written")]
    Lost { output: String, why: String },
    #[error("the lease on output {output}: {message}")]
    Store { output: String, message: String },
}

impl LeaseError {
    /// Whether trying again may succeed (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, LeaseError::Store { .. })
    }
}

/// One record of the chain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    /// Unique to one taking (a retried create recognises its own).
    token: String,
    /// Who holds it, for people: host, process and job.
    owner: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    released: bool,
}

impl Record {
    fn free(&self, now: DateTime<Utc>) -> bool {
        self.released || self.expires_at <= now
    }
}

/// Where a lease chain lives.
#[derive(Clone)]
pub enum LeaseStore {
    Local(PathBuf),
    Volume(Workspace, String),
}

fn name(seq: u64) -> String {
    format!("{seq:012}.json")
}

fn seq_of(file: &str) -> Option<u64> {
    let stem = file.strip_suffix(".json")?;
    (stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

impl LeaseStore {
    /// The chain of `<country>/<query>` under a local destination.
    pub fn local(destination: &std::path::Path, country: &str, query: &str) -> LeaseStore {
        LeaseStore::Local(
            destination
                .join("_leases")
                .join(country.to_lowercase())
                .join(query.to_lowercase()),
        )
    }

    /// The chain of `<country>/<query>` under a Volume destination root.
    pub fn volume(ws: Workspace, root: &str, country: &str, query: &str) -> LeaseStore {
        LeaseStore::Volume(
            ws,
            format!(
                "{}/_leases/{}/{}",
                root.trim_end_matches('/'),
                country.to_lowercase(),
                query.to_lowercase()
            ),
        )
    }

    fn describe(&self) -> String {
        match self {
            LeaseStore::Local(p) => p.display().to_string(),
            LeaseStore::Volume(_, d) => d.clone(),
        }
    }

    async fn list(&self) -> Result<Vec<u64>, String> {
        let names: Vec<String> = match self {
            LeaseStore::Local(dir) => match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.to_string()),
            },
            LeaseStore::Volume(ws, dir) => ws
                .list_directory(dir)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !e.is_directory)
                .filter_map(|e| e.path.rsplit('/').next().map(str::to_string))
                .collect(),
        };
        let mut seqs: Vec<u64> = names.iter().filter_map(|n| seq_of(n)).collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Creates record `seq`; false when it exists.
    async fn create(&self, seq: u64, r: &Record) -> Result<bool, String> {
        let bytes = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        match self {
            LeaseStore::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                use std::io::Write;
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(name(seq)))
                {
                    Ok(mut f) => {
                        f.write_all(&bytes).map_err(|e| e.to_string())?;
                        f.sync_all().map_err(|e| e.to_string())?;
                        Ok(true)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e.to_string()),
                }
            }
            LeaseStore::Volume(ws, dir) => {
                let created = ws
                    .put_bytes(&format!("{dir}/{}", name(seq)), bytes, false)
                    .await
                    .map_err(|e| e.to_string())?;
                if created {
                    return Ok(true);
                }
                // A retried create whose first answer was lost reads 409
                // too: the record is ours if it holds our token.
                Ok(self.read(seq).await?.is_some_and(|x| x.token == r.token))
            }
        }
    }

    async fn read(&self, seq: u64) -> Result<Option<Record>, String> {
        let bytes = match self {
            LeaseStore::Local(dir) => match std::fs::read(dir.join(name(seq))) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.to_string()),
            },
            LeaseStore::Volume(ws, dir) => ws
                .read_file(&format!("{dir}/{}", name(seq)))
                .await
                .map_err(|e| e.to_string())?,
        };
        // A record cut short (its writer died mid-write) holds nothing.
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Rewrites record `seq` (only its holder does, to renew or release it).
    async fn rewrite(&self, seq: u64, r: &Record) -> Result<(), String> {
        let bytes = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        match self {
            LeaseStore::Local(dir) => {
                let tmp = dir.join(format!(".{}.tmp", name(seq)));
                std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, dir.join(name(seq))).map_err(|e| e.to_string())
            }
            LeaseStore::Volume(ws, dir) => ws
                .put_bytes(&format!("{dir}/{}", name(seq)), bytes, true)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    async fn delete(&self, seq: u64) -> Result<(), String> {
        match self {
            LeaseStore::Local(dir) => match std::fs::remove_file(dir.join(name(seq))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
            LeaseStore::Volume(ws, dir) => ws
                .delete_file(&format!("{dir}/{}", name(seq)))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Takes the lease on `output` for `owner`, or says who holds it.
    pub async fn acquire(
        self,
        output: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, LeaseError> {
        let store_err = |message: String| LeaseError::Store {
            output: output.to_string(),
            message: format!("{} ({message})", self.describe()),
        };
        let token = uuid::Uuid::new_v4().to_string();
        let newest = self.list().await.map_err(store_err)?.last().copied();
        if let Some(seq) = newest {
            if let Some(r) = self.read(seq).await.map_err(store_err)? {
                if !r.free(Utc::now()) {
                    return Err(busy(output, &r));
                }
            }
        }
        let next = newest.map_or(1, |s| s + 1);
        let now = Utc::now();
        let record = Record {
            token,
            owner: owner.to_string(),
            acquired_at: now,
            expires_at: now + ttl_of(ttl),
            released: false,
        };
        if !self.create(next, &record).await.map_err(store_err)? {
            // Another taker won this number.
            let winner = self.read(next).await.map_err(store_err)?;
            return Err(busy_or_unknown(output, winner, now, ttl));
        }
        // A taker that listed long ago may have recreated a number already
        // pruned: only the newest record holds the lease.
        let all = self.list().await.map_err(store_err)?;
        if let Some(newer) = all.iter().copied().filter(|s| *s > next).max() {
            let _ = self.delete(next).await;
            let r = self.read(newer).await.map_err(store_err)?;
            return Err(busy_or_unknown(output, r, now, ttl));
        }
        // Records older than the one before ours tell nothing any more.
        for s in all.into_iter().filter(|s| *s + 1 < next) {
            let _ = self.delete(s).await;
        }
        Ok(Lease {
            store: self,
            output: output.to_string(),
            seq: next,
            ttl,
            record: Mutex::new(record),
        })
    }
}

fn ttl_of(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

fn busy(output: &str, r: &Record) -> LeaseError {
    LeaseError::Busy {
        output: output.to_string(),
        owner: r.owner.clone(),
        since: r.acquired_at.to_rfc3339(),
        until: r.expires_at.to_rfc3339(),
    }
}

/// Busy, naming the holder when its record could be read.
fn busy_or_unknown(
    output: &str,
    r: Option<Record>,
    now: DateTime<Utc>,
    ttl: Duration,
) -> LeaseError {
    match r {
        Some(r) => busy(output, &r),
        None => LeaseError::Busy {
            output: output.to_string(),
            owner: "another run".into(),
            since: now.to_rfc3339(),
            until: (now + ttl_of(ttl)).to_rfc3339(),
        },
    }
}

/// A held lease; release it when done (it also expires on its own).
pub struct Lease {
    store: LeaseStore,
    output: String,
    seq: u64,
    ttl: Duration,
    record: Mutex<Record>,
}

impl Lease {
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lost(&self, why: impl Into<String>) -> LeaseError {
        LeaseError::Lost {
            output: self.output.clone(),
            why: why.into(),
        }
    }

    /// Fails unless this lease is still the newest record and has at least
    /// a third of its time left: called before a step others can see.
    pub async fn check(&self) -> Result<(), LeaseError> {
        let r = self.record.lock().await.clone();
        if r.expires_at - ttl_of(self.ttl / 3) <= Utc::now() {
            return Err(self.lost("it was not renewed in time"));
        }
        let newest = self
            .store
            .list()
            .await
            .map_err(|m| self.lost(format!("cannot read it: {m}")))?
            .last()
            .copied();
        match newest {
            Some(s) if s == self.seq => Ok(()),
            Some(s) => Err(self.lost(format!("record {s} was taken after ours, {}", self.seq))),
            None => Err(self.lost("its record is gone")),
        }
    }

    /// Extends the lease by its time to live (after checking it is held).
    pub async fn renew(&self) -> Result<(), LeaseError> {
        self.check().await?;
        let mut r = self.record.lock().await;
        let mut next = r.clone();
        next.expires_at = Utc::now() + ttl_of(self.ttl);
        self.store
            .rewrite(self.seq, &next)
            .await
            .map_err(|m| self.lost(format!("cannot renew it: {m}")))?;
        *r = next;
        Ok(())
    }

    /// Renews every third of the time to live; returns only when renewing
    /// fails (the holder must then stop).
    pub async fn keep(&self) -> LeaseError {
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            if let Err(e) = self.renew().await {
                return e;
            }
        }
    }

    /// Gives the lease up, if it is still ours.
    pub async fn release(self) {
        if self.check().await.is_err() {
            return;
        }
        let mut r = self.record.lock().await.clone();
        r.released = true;
        if let Err(e) = self.store.rewrite(self.seq, &r).await {
            tracing::warn!(output = self.output, error = %e, "releasing the lease failed; it expires on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (LeaseStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "bridge-lease-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        (LeaseStore::local(&dir, "Colombia", "Ventas"), dir)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_next_after_release_or_expiry() {
        let (s, dir) = store("one");
        let ttl = Duration::from_secs(60);
        let a = s.clone().acquire("out", "job a", ttl).await.unwrap();
        let e = s.clone().acquire("out", "job b", ttl).await.err().unwrap();
        assert!(
            matches!(&e, LeaseError::Busy { owner, .. } if owner == "job a"),
            "{e}"
        );
        a.renew().await.unwrap();
        a.release().await;
        let b = s.clone().acquire("out", "job b", ttl).await.unwrap();
        b.check().await.unwrap();
        // The case of the names does not make another lease.
        let again = LeaseStore::local(&dir, "colombia", "VENTAS");
        assert!(again.acquire("out", "job c", ttl).await.is_err());
        // Expired: the next taker gets it, and the old holder finds out.
        let short = Duration::from_millis(300);
        b.release().await;
        let c = s.clone().acquire("out", "job c", short).await.unwrap();
        tokio::time::sleep(short * 2).await;
        let d = s.clone().acquire("out", "job d", ttl).await.unwrap();
        assert!(matches!(c.check().await, Err(LeaseError::Lost { .. })));
        assert!(matches!(c.renew().await, Err(LeaseError::Lost { .. })));
        d.check().await.unwrap();
        // Old records are pruned: only the last two remain.
        assert!(s.list().await.unwrap().len() <= 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn racing_takers_get_exactly_one_lease() {
        for round in 0..20 {
            let (s, dir) = store(&format!("race{round}"));
            let takers: Vec<_> = (0..6)
                .map(|i| {
                    let s = s.clone();
                    tokio::spawn(async move {
                        s.acquire("out", &format!("t{i}"), Duration::from_secs(60))
                            .await
                            .ok()
                    })
                })
                .collect();
            let mut held = 0;
            for t in takers {
                if t.await.unwrap().is_some() {
                    held += 1;
                }
            }
            assert_eq!(held, 1, "round {round}");
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
