//! List Blobs over the blob rows: prefix, delimiter, marker, page size.

use rusqlite::params;

use super::blobs::{BlobProps, COLS, row};
use super::containers::get as get_container;
use super::{Store, db};
use crate::api_error::ApiError;

/// One page of a blob listing: blobs and prefixes in name order.
#[derive(Debug, Default)]
pub struct ListedBlobs {
    pub entries: Vec<ListEntry>,
    pub next_marker: Option<String>,
}

#[derive(Debug)]
pub enum ListEntry {
    Blob(Box<BlobProps>),
    Prefix(String),
}

impl Store {
    /// Lists blobs under `prefix` from `marker` on. With a delimiter, names
    /// that continue past it collapse into one prefix entry. Blobs and
    /// prefixes together count against `max`.
    pub fn list_blobs(
        &self,
        account: &str,
        container: &str,
        prefix: &str,
        delimiter: Option<&str>,
        marker: &str,
        max: usize,
    ) -> Result<ListedBlobs, ApiError> {
        let conn = self.lock();
        get_container(&conn, account, container)?;
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM blobs WHERE account=?1 AND container=?2 AND name>=?3 AND substr(name, 1, ?4)=?5
                 ORDER BY name LIMIT ?6"
            ))
            .map_err(db)?;
        let prefix_chars = prefix.chars().count() as i64;
        let mut cursor = if marker > prefix {
            marker.to_string()
        } else {
            prefix.to_string()
        };
        let mut out = ListedBlobs::default();
        let batch = (max + 1).min(1000) as i64;
        'scan: loop {
            let rows: Vec<BlobProps> = st
                .query_map(
                    params![account, container, cursor, prefix_chars, prefix, batch],
                    row,
                )
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let exhausted = (rows.len() as i64) < batch;
            let Some(last) = rows.last().map(|r| r.name.clone()) else {
                break;
            };
            for blob in rows {
                if out.entries.len() == max {
                    out.next_marker = Some(blob.name);
                    break 'scan;
                }
                let rest = &blob.name[prefix.len()..];
                if let Some(d) = delimiter.filter(|d| !d.is_empty())
                    && let Some(at) = rest.find(d)
                {
                    let p = blob.name[..prefix.len() + at + d.len()].to_string();
                    cursor = successor(&p);
                    out.entries.push(ListEntry::Prefix(p));
                    continue 'scan;
                }
                out.entries.push(ListEntry::Blob(Box::new(blob)));
            }
            if exhausted {
                break;
            }
            cursor = format!("{last}\0");
        }
        Ok(out)
    }
}

/// The smallest string greater than every string that starts with `p`.
fn successor(p: &str) -> String {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(n) = char::from_u32(c as u32 + 1) {
            chars.push(n);
            return chars.into_iter().collect();
        }
    }
    String::from(char::MAX)
}
