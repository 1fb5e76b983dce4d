//! Exporting the audit log: every entry a search matches, as JSON Lines (one `AuditEntry` per
//! line, exactly as stored and hashed, so an export can be verified elsewhere) or CSV (for a
//! spreadsheet; cells that a spreadsheet would run as a formula are prefixed with `'`).

use std::io::Write;

use hospital_domain::audit::{Actor, AuditEntry};

use super::{search, AuditQuery, AuditStore};
use crate::error::Result;
use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    JsonLines,
    Csv,
}

const CSV_HEADER: &str =
    "chain,seq,at,actor,roles,action,target_kind,target_id,account,patient,purpose,source_ip,outcome,prev_hash,hash";

/// Writes every entry `query` matches (all pages, newest first; `query.limit` is the page size)
/// to `out`; returns how many.
pub async fn export<W: Write + ?Sized>(
    store: &dyn AuditStore,
    query: &AuditQuery,
    format: ExportFormat,
    out: &mut W,
) -> Result<u64> {
    let io = |e: std::io::Error| StoreError::Engine(format!("export: {e}"));
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}").map_err(io)?;
    }
    let mut q = query.clone();
    let mut n = 0;
    loop {
        let page = search(store, &q).await?;
        for e in &page.entries {
            match format {
                ExportFormat::JsonLines => {
                    serde_json::to_writer(&mut *out, e).map_err(|e| StoreError::Engine(format!("export: {e}")))?;
                    out.write_all(b"\n").map_err(io)?;
                }
                ExportFormat::Csv => writeln!(out, "{}", csv_row(e)).map_err(io)?,
            }
            n += 1;
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    out.flush().map_err(io)?;
    Ok(n)
}

fn csv_row(e: &AuditEntry) -> String {
    let ev = &e.event;
    let (actor, roles) = match &ev.actor {
        Actor::Staff { id, roles } => {
            (id.to_string(), roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" "))
        }
        Actor::System { name } => (format!("system:{name}"), String::new()),
    };
    let cells = [
        e.chain.clone(),
        e.seq.to_string(),
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        actor,
        roles,
        ev.action.to_string(),
        ev.target.kind.clone(),
        ev.target.id.clone(),
        ev.concerning.map(|c| c.account.to_string()).unwrap_or_default(),
        ev.concerning.and_then(|c| c.patient).map(|p| p.to_string()).unwrap_or_default(),
        ev.purpose.clone().unwrap_or_default(),
        ev.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        ev.outcome.as_str().to_string(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    cells.iter().map(|c| hospital_domain::text::csv_cell(c)).collect::<Vec<_>>().join(",")
}
