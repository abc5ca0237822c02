//! Blob rows, their extents (the data files that make up their bytes, in
//! order) and uncommitted blocks.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::containers::{from_json, get as get_container, to_json};
use super::{Store, db};
use crate::api_error::ApiError;
use crate::conditions::{Conditions, Current};
use crate::range::ByteRange;
use crate::timefmt::{new_etag, now_millis};
use crate::xml::BlockSource;

/// The standard HTTP content headers a blob stores and returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    /// Base64 MD5 of the whole blob.
    pub content_md5: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
}

/// A blob's stored properties.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobProps {
    pub name: String,
    /// `BlockBlob` (append and page blobs are not stored yet).
    pub blob_type: String,
    pub size: u64,
    pub etag: String,
    pub created_ms: i64,
    pub last_modified_ms: i64,
    pub content: ContentHeaders,
    pub metadata: Vec<(String, String)>,
    /// Set when the blob was the destination of a Copy Blob.
    pub copy: Option<CopyInfo>,
    pub lease: Option<crate::lease::Lease>,
}

/// The outcome of the last Copy Blob into a blob (copies within the
/// service complete before the response, so the status is final).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyInfo {
    pub id: String,
    pub source: String,
    pub status: String,
    pub bytes: u64,
    pub completed_ms: i64,
}

impl BlobProps {
    pub fn current(&self) -> Current<'_> {
        Current {
            etag: &self.etag,
            last_modified_ms: self.last_modified_ms,
        }
    }
}

/// A piece of a blob's bytes: `len` bytes of a data file from `offset`.
#[derive(Debug)]
pub struct Extent {
    pub path: PathBuf,
    /// Opened while the metadata was read, so a concurrent overwrite that
    /// removes the file cannot pull it away from this reader.
    pub file: Option<std::fs::File>,
    pub offset: u64,
    pub len: u64,
}

/// What Get Blob serves.
#[derive(Debug)]
pub struct ReadBlob {
    pub props: BlobProps,
    /// The served window: `Some((offset, len))` for a range request.
    pub range: Option<(u64, u64)>,
    pub extents: Vec<Extent>,
}

/// One block in a block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub id: String,
    pub size: u64,
}

/// What Get Block List reports: the blob (once committed) and its blocks.
#[derive(Debug)]
pub struct BlockList {
    pub blob: Option<BlobProps>,
    pub committed: Vec<BlockInfo>,
    pub uncommitted: Vec<BlockInfo>,
}

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

/// Most extents opened eagerly per read; the rest are opened as streamed.
const EAGER_OPEN: usize = 256;

const COLS: &str =
    "name, blob_type, size, etag, created, last_modified, content_type, content_encoding,
    content_language, content_md5, cache_control, content_disposition, metadata, copy, lease";

pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlobProps> {
    Ok(BlobProps {
        name: r.get(0)?,
        blob_type: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        etag: r.get(3)?,
        created_ms: r.get(4)?,
        last_modified_ms: r.get(5)?,
        content: ContentHeaders {
            content_type: r.get(6)?,
            content_encoding: r.get(7)?,
            content_language: r.get(8)?,
            content_md5: r.get(9)?,
            cache_control: r.get(10)?,
            content_disposition: r.get(11)?,
        },
        metadata: from_json(&r.get::<_, String>(12)?),
        copy: r
            .get::<_, Option<String>>(13)?
            .and_then(|c| serde_json::from_str(&c).ok()),
        lease: r
            .get::<_, Option<String>>(14)?
            .and_then(|l| serde_json::from_str(&l).ok()),
    })
}

pub(super) fn find(
    conn: &Connection,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Option<BlobProps>, ApiError> {
    get_container(conn, account, container)?;
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM blobs WHERE account=?1 AND container=?2 AND name=?3"
    ))
    .map_err(db)?
    .query_row(params![account, container, name], row)
    .optional()
    .map_err(db)
}

pub(super) fn write_row(
    tx: &Transaction<'_>,
    account: &str,
    container: &str,
    p: &BlobProps,
) -> Result<(), ApiError> {
    let c = &p.content;
    tx.execute(
        "INSERT OR REPLACE INTO blobs (account, container, name, blob_type, size, etag, created, last_modified,
            content_type, content_encoding, content_language, content_md5, cache_control, content_disposition, metadata, copy, lease)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            account, container, p.name, p.blob_type, p.size as i64, p.etag, p.created_ms, p.last_modified_ms,
            c.content_type, c.content_encoding, c.content_language, c.content_md5, c.cache_control,
            c.content_disposition, to_json(&p.metadata), p.copy.as_ref().map(to_json),
            p.lease.as_ref().map(to_json)
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Files referenced by a blob's extents and uncommitted blocks.
pub(super) fn files_of(
    tx: &Transaction<'_>,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    let mut st = tx
        .prepare_cached(
            "SELECT file FROM extents WHERE account=?1 AND container=?2 AND blob=?3
             UNION SELECT file FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3",
        )
        .map_err(db)?;
    st.query_map(params![account, container, name], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)
}

pub(super) fn clear_blocks(
    tx: &Transaction<'_>,
    account: &str,
    container: &str,
    name: &str,
) -> Result<(), ApiError> {
    for table in ["extents", "uncommitted"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account=?1 AND container=?2 AND blob=?3"),
            params![account, container, name],
        )
        .map_err(db)?;
    }
    Ok(())
}

pub(super) fn committed(
    conn: &Connection,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Vec<(Option<String>, u64, String)>, ApiError> {
    let mut st = conn
        .prepare_cached(
            "SELECT block_id, size, file FROM extents WHERE account=?1 AND container=?2 AND blob=?3 ORDER BY seq",
        )
        .map_err(db)?;
    st.query_map(params![account, container, name], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .map_err(db)?
    .collect::<Result<_, _>>()
    .map_err(db)
}

fn uncommitted(
    conn: &Connection,
    account: &str,
    container: &str,
    name: &str,
) -> Result<Vec<(String, u64, String)>, ApiError> {
    let mut st = conn
        .prepare_cached(
            "SELECT block_id, size, file FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3 ORDER BY created, block_id",
        )
        .map_err(db)?;
    st.query_map(params![account, container, name], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .map_err(db)?
    .collect::<Result<_, _>>()
    .map_err(db)
}

/// Conditions of a write that creates or replaces a blob; `If-None-Match: *`
/// on an existing blob is 409 `BlobAlreadyExists`, as Azure answers.
pub(super) fn check_overwrite(conds: &Conditions, old: Option<&BlobProps>) -> Result<(), ApiError> {
    if old.is_some() && conds.if_none_match == Some(crate::conditions::EtagMatch::Any) {
        return Err(ApiError::new(
            hyper::StatusCode::CONFLICT,
            "BlobAlreadyExists",
            "The specified blob already exists.",
        ));
    }
    conds.check(old.map(|o| o.current()), false)?;
    blob_lease_ok(conds, old)
}

/// A read may name a lease; if it does, it must be the blob's.
pub fn read_lease_ok(conds: &Conditions, blob: &BlobProps) -> Result<(), ApiError> {
    crate::lease::check_write(
        blob.lease.as_ref(),
        conds.lease_id.as_deref(),
        crate::lease::Target::Blob,
        false,
        now_millis(),
    )
}

/// A write to a blob under an active lease must name that lease.
pub(super) fn blob_lease_ok(conds: &Conditions, blob: Option<&BlobProps>) -> Result<(), ApiError> {
    crate::lease::check_write(
        blob.and_then(|b| b.lease.as_ref()),
        conds.lease_id.as_deref(),
        crate::lease::Target::Blob,
        true,
        now_millis(),
    )
}

/// A new blob's properties: what the writer supplies.
#[derive(Debug, Clone, Default)]
pub struct NewBlob {
    pub blob_type: BlobType,
    pub content: ContentHeaders,
    pub metadata: Vec<(String, String)>,
}

/// The kinds of blob this service stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BlobType {
    #[default]
    BlockBlob,
    AppendBlob,
}

impl BlobType {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::BlockBlob => "BlockBlob",
            BlobType::AppendBlob => "AppendBlob",
        }
    }
}

/// Most blocks an append blob may have.
pub const MAX_APPEND_BLOCKS: i64 = 50_000;

fn invalid_blob_type() -> ApiError {
    ApiError::new(
        hyper::StatusCode::CONFLICT,
        "InvalidBlobType",
        "The blob type is invalid for this operation.",
    )
}

/// Append Block's own conditions.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendConditions {
    /// `x-ms-blob-condition-maxsize`
    pub max_size: Option<u64>,
    /// `x-ms-blob-condition-appendpos`
    pub append_position: Option<u64>,
}

impl Store {
    /// A blob's properties; 404 `ContainerNotFound` / `BlobNotFound`.
    pub fn get_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
    ) -> Result<BlobProps, ApiError> {
        let conn = self.lock();
        find(&conn, account, container, name)?.ok_or_else(ApiError::blob_not_found)
    }

    /// Checks conditions and resolves the range, then opens the data files
    /// the served bytes come from.
    pub fn open_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        range: Option<ByteRange>,
    ) -> Result<ReadBlob, ApiError> {
        let conn = self.lock();
        let props = find(&conn, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        conds.check(Some(props.current()), true)?;
        read_lease_ok(conds, &props)?;
        let window = match range {
            Some(r) => Some(crate::range::resolve(r, props.size)?),
            None => None,
        };
        let pieces: Vec<(u64, String)> = committed(&conn, account, container, name)?
            .into_iter()
            .map(|(_, size, file)| (size, file))
            .collect();
        let extents = self.window_extents(&pieces, window, props.size)?;
        Ok(ReadBlob {
            props,
            range: window,
            extents,
        })
    }

    /// Opens the data files behind `window` (or the whole blob).
    pub(super) fn window_extents(
        &self,
        pieces: &[(u64, String)],
        window: Option<(u64, u64)>,
        total: u64,
    ) -> Result<Vec<Extent>, ApiError> {
        let (mut want_from, want_len) = window.unwrap_or((0, total));
        let want_to = want_from + want_len;
        let mut extents = Vec::new();
        let mut pos = 0u64;
        for (size, file) in pieces {
            let size = *size;
            let (start, end) = (pos, pos + size);
            pos = end;
            if end <= want_from || size == 0 {
                continue;
            }
            if start >= want_to {
                break;
            }
            let offset = want_from - start;
            let len = end.min(want_to) - want_from;
            want_from += len;
            let path = self.file_path(file);
            let file = if extents.len() < EAGER_OPEN {
                Some(
                    std::fs::File::open(&path)
                        .map_err(|e| ApiError::internal(format!("open {}: {e}", path.display())))?,
                )
            } else {
                None
            };
            extents.push(Extent {
                path,
                file,
                offset,
                len,
            });
        }
        Ok(extents)
    }

    /// Put Blob: replaces the blob with the bytes of one data file (or none
    /// for an empty blob).
    pub fn put_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        new: NewBlob,
        data: Option<(String, u64)>,
    ) -> Result<BlobProps, ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let old = find(&tx, account, container, name)?;
        check_overwrite(conds, old.as_ref())?;
        let garbage = files_of(&tx, account, container, name)?;
        clear_blocks(&tx, account, container, name)?;
        let now = now_millis();
        let props = BlobProps {
            name: name.to_string(),
            blob_type: new.blob_type.as_str().to_string(),
            size: data.as_ref().map_or(0, |d| d.1),
            etag: new_etag(),
            created_ms: old.as_ref().map_or(now, |o| o.created_ms),
            last_modified_ms: now,
            content: new.content,
            metadata: new.metadata,
            copy: None,
            lease: old.as_ref().and_then(|o| o.lease.clone()),
        };
        if let Some((file, size)) = &data {
            tx.execute(
                "INSERT INTO extents (account, container, blob, seq, block_id, size, file) VALUES (?1, ?2, ?3, 0, NULL, ?4, ?5)",
                params![account, container, name, *size as i64, file],
            )
            .map_err(db)?;
        }
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, garbage);
        Ok(props)
    }

    /// Put Block: stages a block (replacing one with the same id).
    pub fn put_block(
        &self,
        account: &str,
        container: &str,
        name: &str,
        block_id: &str,
        file: &str,
        size: u64,
    ) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        if find(&tx, account, container, name)?.is_some_and(|b| b.blob_type != "BlockBlob") {
            return Err(invalid_blob_type());
        }
        let other_len: Option<i64> = tx
            .query_row(
                "SELECT length(block_id) FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3 LIMIT 1",
                params![account, container, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if other_len.is_some_and(|l| l as usize != block_id.len()) {
            return Err(ApiError::new(
                hyper::StatusCode::BAD_REQUEST,
                "InvalidBlobOrBlock",
                "The specified blob or block content is invalid.",
            ));
        }
        let old: Option<String> = tx
            .query_row(
                "SELECT file FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3 AND block_id=?4",
                params![account, container, name, block_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        tx.execute(
            "INSERT OR REPLACE INTO uncommitted (account, container, blob, block_id, size, file, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![account, container, name, block_id, size as i64, file, now_millis()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, old.into_iter().collect());
        Ok(())
    }

    /// Runs a lease operation on a blob.
    pub fn lease_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        action: crate::lease::LeaseAction,
    ) -> Result<(BlobProps, crate::lease::LeaseOutcome), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut props =
            find(&tx, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        conds.check(Some(props.current()), false)?;
        let outcome = crate::lease::apply(props.lease.as_ref(), action, now_millis())?;
        props.lease = outcome.lease.clone();
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        Ok((props, outcome))
    }

    /// Append Block: adds one data file at the end of an append blob.
    pub fn append_block(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        append: AppendConditions,
        (file, size): (&str, u64),
    ) -> Result<(BlobProps, u64, i64), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut props =
            find(&tx, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        if props.blob_type != "AppendBlob" {
            return Err(invalid_blob_type());
        }
        conds.check(Some(props.current()), false)?;
        blob_lease_ok(conds, Some(&props))?;
        if append.max_size.is_some_and(|m| props.size + size > m) {
            return Err(ApiError::new(
                hyper::StatusCode::PRECONDITION_FAILED,
                "MaxBlobSizeConditionNotMet",
                "The max blob size condition specified was not met.",
            ));
        }
        if append.append_position.is_some_and(|p| p != props.size) {
            return Err(ApiError::new(
                hyper::StatusCode::PRECONDITION_FAILED,
                "AppendPositionConditionNotMet",
                "The append position condition specified was not met.",
            ));
        }
        let count: i64 = tx
            .query_row(
                "SELECT count(*) FROM extents WHERE account=?1 AND container=?2 AND blob=?3",
                params![account, container, name],
                |r| r.get(0),
            )
            .map_err(db)?;
        if count >= MAX_APPEND_BLOCKS {
            return Err(ApiError::new(
                hyper::StatusCode::CONFLICT,
                "BlockCountExceedsLimit",
                "The committed block count cannot exceed the maximum limit of 50,000 blocks.",
            ));
        }
        tx.execute(
            "INSERT INTO extents (account, container, blob, seq, block_id, size, file) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
            params![account, container, name, count, size as i64, file],
        )
        .map_err(db)?;
        let offset = props.size;
        props.size += size;
        props.etag = new_etag();
        props.last_modified_ms = now_millis();
        props.content.content_md5 = None;
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        Ok((props, offset, count + 1))
    }

    /// Copy Blob within the service: the destination shares the source's
    /// data files (no bytes are copied) and takes its properties; its
    /// metadata is `metadata` when given, else the source's.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_blob(
        &self,
        account: &str,
        source: (&str, &str, &str),
        container: &str,
        name: &str,
        conds: &Conditions,
        metadata: Option<Vec<(String, String)>>,
        copy: Option<CopyInfo>,
    ) -> Result<BlobProps, ApiError> {
        let (src_account, src_container, src_name) = source;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let src = match find(&tx, src_account, src_container, src_name) {
            Ok(Some(b)) => b,
            Ok(None) | Err(_) => {
                return Err(ApiError::new(
                    hyper::StatusCode::NOT_FOUND,
                    "CannotVerifyCopySource",
                    "The specified resource does not exist.",
                ));
            }
        };
        let src_extents = committed(&tx, src_account, src_container, src_name)?;
        let old = find(&tx, account, container, name)?;
        check_overwrite(conds, old.as_ref())?;
        let garbage = files_of(&tx, account, container, name)?;
        clear_blocks(&tx, account, container, name)?;
        for (seq, (id, size, file)) in src_extents.iter().enumerate() {
            tx.execute(
                "INSERT INTO extents (account, container, blob, seq, block_id, size, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![account, container, name, seq as i64, id, *size as i64, file],
            )
            .map_err(db)?;
        }
        let now = now_millis();
        let props = BlobProps {
            name: name.to_string(),
            blob_type: src.blob_type.clone(),
            size: src.size,
            etag: new_etag(),
            created_ms: old.as_ref().map_or(now, |o| o.created_ms),
            last_modified_ms: now,
            content: src.content.clone(),
            metadata: metadata.unwrap_or(src.metadata),
            copy,
            lease: old.as_ref().and_then(|o| o.lease.clone()),
        };
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, garbage);
        Ok(props)
    }

    /// Put Block List: the blob becomes the named blocks in order; every
    /// uncommitted block not named is discarded.
    pub fn put_block_list(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        list: &[(BlockSource, String)],
        new: NewBlob,
    ) -> Result<BlobProps, ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let old = find(&tx, account, container, name)?;
        check_overwrite(conds, old.as_ref())?;
        if old.as_ref().is_some_and(|b| b.blob_type != "BlockBlob") {
            return Err(invalid_blob_type());
        }
        let staged = uncommitted(&tx, account, container, name)?;
        let current = committed(&tx, account, container, name)?;
        let from_staged = |id: &str| {
            staged
                .iter()
                .find(|b| b.0 == id)
                .map(|b| (b.1, b.2.clone()))
        };
        let from_current = |id: &str| {
            current
                .iter()
                .find(|b| b.0.as_deref() == Some(id))
                .map(|b| (b.1, b.2.clone()))
        };
        let mut chosen = Vec::with_capacity(list.len());
        for (src, id) in list {
            let found = match src {
                BlockSource::Committed => from_current(id),
                BlockSource::Uncommitted => from_staged(id),
                BlockSource::Latest => from_staged(id).or_else(|| from_current(id)),
            };
            let (size, file) = found.ok_or_else(|| {
                ApiError::new(
                    hyper::StatusCode::BAD_REQUEST,
                    "InvalidBlockList",
                    "The specified block list is invalid.",
                )
            })?;
            chosen.push((id, size, file));
        }
        let garbage = files_of(&tx, account, container, name)?;
        clear_blocks(&tx, account, container, name)?;
        let mut total = 0u64;
        for (seq, (id, size, file)) in chosen.iter().enumerate() {
            tx.execute(
                "INSERT INTO extents (account, container, blob, seq, block_id, size, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![account, container, name, seq as i64, id, *size as i64, file],
            )
            .map_err(db)?;
            total += size;
        }
        let now = now_millis();
        let props = BlobProps {
            name: name.to_string(),
            blob_type: "BlockBlob".into(),
            size: total,
            etag: new_etag(),
            created_ms: old.as_ref().map_or(now, |o| o.created_ms),
            last_modified_ms: now,
            content: new.content,
            metadata: new.metadata,
            copy: None,
            lease: old.as_ref().and_then(|o| o.lease.clone()),
        };
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, garbage);
        Ok(props)
    }

    /// Get Block List: the blob (if committed) and its committed and
    /// uncommitted blocks.
    pub fn get_block_list(
        &self,
        account: &str,
        container: &str,
        name: &str,
    ) -> Result<BlockList, ApiError> {
        let conn = self.lock();
        let props = find(&conn, account, container, name)?;
        let staged = uncommitted(&conn, account, container, name)?;
        if props.is_none() && staged.is_empty() {
            return Err(ApiError::blob_not_found());
        }
        let current = committed(&conn, account, container, name)?
            .into_iter()
            .filter_map(|(id, size, _)| id.map(|id| BlockInfo { id, size }))
            .collect();
        let staged = staged
            .into_iter()
            .map(|(id, size, _)| BlockInfo { id, size })
            .collect();
        Ok(BlockList {
            blob: props,
            committed: current,
            uncommitted: staged,
        })
    }

    /// Changes a blob's properties or metadata under the given conditions;
    /// a new ETag, the bytes untouched.
    pub fn update_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        change: impl FnOnce(&mut BlobProps),
    ) -> Result<BlobProps, ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut props =
            find(&tx, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        conds.check(Some(props.current()), false)?;
        blob_lease_ok(conds, Some(&props))?;
        change(&mut props);
        props.etag = new_etag();
        props.last_modified_ms = now_millis();
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        Ok(props)
    }

    /// Delete Blob; with snapshots, `x-ms-delete-snapshots` decides
    /// whether they go too (`include`) or alone (`only`).
    pub fn delete_blob(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        snapshots: Option<super::DeleteSnapshots>,
    ) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let props = find(&tx, account, container, name)?.ok_or_else(ApiError::blob_not_found)?;
        conds.check(Some(props.current()), false)?;
        blob_lease_ok(conds, Some(&props))?;
        let has_snapshots: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM snapshots WHERE account=?1 AND container=?2 AND name=?3)",
                params![account, container, name],
                |r| r.get(0),
            )
            .map_err(db)?;
        let mut garbage = Vec::new();
        match snapshots {
            None if has_snapshots => {
                return Err(ApiError::new(
                    hyper::StatusCode::CONFLICT,
                    "SnapshotsPresent",
                    "This operation is not permitted because the blob has snapshots.",
                ));
            }
            Some(_) => garbage.extend(super::snapshots::drop_all(&tx, account, container, name)?),
            None => {}
        }
        if snapshots != Some(super::DeleteSnapshots::Only) {
            garbage.extend(files_of(&tx, account, container, name)?);
            clear_blocks(&tx, account, container, name)?;
            tx.execute(
                "DELETE FROM blobs WHERE account=?1 AND container=?2 AND name=?3",
                params![account, container, name],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, garbage);
        Ok(())
    }

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
