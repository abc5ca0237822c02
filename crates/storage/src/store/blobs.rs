//! Blob rows, their extents (the data files that make up their bytes, in
//! order) and uncommitted blocks.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use super::containers::{from_json, get as get_container, to_json};
use super::{Commit, Store, db};
use crate::api_error::ApiError;
use crate::conditions::{Conditions, Current};
use crate::range::ByteRange;
use crate::timefmt::{new_etag, now_millis};

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
    /// The properties of a blob written afresh over `old` (if any): a new
    /// ETag, modified now, created when `old` was, `old`'s lease kept; the
    /// caller sets type, size, content headers, metadata and copy.
    pub(super) fn replacing(name: &str, old: Option<&BlobProps>) -> BlobProps {
        let now = now_millis();
        BlobProps {
            name: name.to_string(),
            blob_type: String::new(),
            size: 0,
            etag: new_etag(),
            created_ms: old.map_or(now, |o| o.created_ms),
            last_modified_ms: now,
            content: ContentHeaders::default(),
            metadata: Vec::new(),
            copy: None,
            lease: old.and_then(|o| o.lease.clone()),
        }
    }

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
    /// The bytes themselves, for data kept inline in the database.
    pub inline: Option<bytes::Bytes>,
}

/// What Get Blob serves.
#[derive(Debug)]
pub struct ReadBlob {
    pub props: BlobProps,
    /// The served window: `Some((offset, len))` for a range request.
    pub range: Option<(u64, u64)>,
    pub extents: Vec<Extent>,
}

/// Most extents opened eagerly per read; the rest are opened as streamed.
const EAGER_OPEN: usize = 256;

pub(super) const COLS: &str =
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
    tx: &Connection,
    account: &str,
    container: &str,
    p: &BlobProps,
) -> Result<(), ApiError> {
    let c = &p.content;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO blobs (account, container, name, blob_type, size, etag, created, last_modified,
            content_type, content_encoding, content_language, content_md5, cache_control, content_disposition, metadata, copy, lease)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .map_err(db)?
    .execute(params![
            account, container, p.name, p.blob_type, p.size as i64, p.etag, p.created_ms, p.last_modified_ms,
            c.content_type, c.content_encoding, c.content_language, c.content_md5, c.cache_control,
            c.content_disposition, to_json(&p.metadata), p.copy.as_ref().map(to_json),
            p.lease.as_ref().map(to_json)
        ])
    .map_err(db)?;
    Ok(())
}

/// Files referenced by a blob's extents and uncommitted blocks.
pub(super) fn files_of(
    tx: &Connection,
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
    tx: &Connection,
    account: &str,
    container: &str,
    name: &str,
) -> Result<(), ApiError> {
    for sql in [
        "DELETE FROM extents WHERE account=?1 AND container=?2 AND blob=?3",
        "DELETE FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3",
    ] {
        tx.prepare_cached(sql)
            .map_err(db)?
            .execute(params![account, container, name])
            .map_err(db)?;
    }
    Ok(())
}

/// Replaces a blob's extents with `extents` (block id, size, file) in
/// order and drops its uncommitted blocks; returns the files it used
/// before, to collect after the commit.
pub(super) fn replace_extents<'a>(
    tx: &Connection,
    account: &str,
    container: &str,
    name: &str,
    extents: impl IntoIterator<Item = (Option<&'a str>, u64, &'a str)>,
) -> Result<Vec<String>, ApiError> {
    let garbage = files_of(tx, account, container, name)?;
    clear_blocks(tx, account, container, name)?;
    insert_extents(tx, account, container, name, extents)?;
    Ok(garbage)
}

/// Writes a blob's extents (block id, size, data file), in order.
fn insert_extents<'a>(
    tx: &Connection,
    account: &str,
    container: &str,
    name: &str,
    extents: impl IntoIterator<Item = (Option<&'a str>, u64, &'a str)>,
) -> Result<(), ApiError> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO extents (account, container, blob, seq, block_id, size, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db)?;
    for (seq, (id, size, file)) in extents.into_iter().enumerate() {
        st.execute(params![
            account,
            container,
            name,
            seq as i64,
            id,
            size as i64,
            file
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// [`replace_extents`] for a name no committed blob has: it has no
/// extents yet, only perhaps uncommitted blocks, dropped (and their files
/// returned) in one statement.
fn first_extents<'a>(
    tx: &Connection,
    account: &str,
    container: &str,
    name: &str,
    extents: impl IntoIterator<Item = (Option<&'a str>, u64, &'a str)>,
) -> Result<Vec<String>, ApiError> {
    let garbage = tx
        .prepare_cached(
            "DELETE FROM uncommitted WHERE account=?1 AND container=?2 AND blob=?3 RETURNING file",
        )
        .map_err(db)?
        .query_map(params![account, container, name], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(db)?;
    insert_extents(tx, account, container, name, extents)?;
    Ok(garbage)
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

pub(super) fn uncommitted(
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
    /// Bytes to keep inline in the database (small Put Blob bodies); the
    /// data id then starts with [`super::INLINE_PREFIX`].
    pub inline: Option<bytes::Bytes>,
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

pub(super) fn invalid_blob_type() -> ApiError {
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
        let conn = self.read_lock();
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
        // A data file can go between this snapshot and its opening when
        // the blob is overwritten meanwhile: then read the newer version.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.open_blob_once(account, container, name, conds, range) {
                Err(e) if e.message.starts_with(super::GONE) && tries < 3 => continue,
                r => return r,
            }
        }
    }

    fn open_blob_once(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        range: Option<ByteRange>,
    ) -> Result<ReadBlob, ApiError> {
        let mut conn = self.read_lock();
        let conn = conn.transaction().map_err(db)?;
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
        let extents = self.window_extents(&conn, &pieces, window, props.size)?;
        Ok(ReadBlob {
            props,
            range: window,
            extents,
        })
    }

    /// Opens the data files behind `window` (or the whole blob).
    pub(super) fn window_extents(
        &self,
        conn: &rusqlite::Connection,
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
            if file.starts_with(super::INLINE_PREFIX) {
                let data: Vec<u8> = conn
                    .query_row("SELECT data FROM inline_bytes WHERE id=?1", [file], |r| {
                        r.get(0)
                    })
                    .map_err(db)?;
                let end = (offset + len) as usize;
                if data.len() < end {
                    return Err(ApiError::internal(format!(
                        "inline data {file} shorter than recorded"
                    )));
                }
                let bytes = bytes::Bytes::from(data).slice(offset as usize..end);
                extents.push(Extent {
                    path: PathBuf::new(),
                    file: None,
                    offset: 0,
                    len,
                    inline: Some(bytes),
                });
                continue;
            }
            let path = self.file_path(file);
            let file = if extents.len() < EAGER_OPEN {
                Some(std::fs::File::open(&path).map_err(|e| {
                    let gone = if e.kind() == std::io::ErrorKind::NotFound {
                        super::GONE
                    } else {
                        ""
                    };
                    ApiError::internal(format!("{gone}open {}: {e}", path.display()))
                })?)
            } else {
                None
            };
            extents.push(Extent {
                path,
                file,
                offset,
                len,
                inline: None,
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
        let (props, garbage) = self
            .put_blob_commit(account, container, name, conds, new, data)
            .wait()?;
        self.remove_files(garbage);
        Ok(props)
    }

    /// [`Store::put_blob`], committed with the next group.
    pub async fn put_blob_async(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        new: NewBlob,
        data: Option<(String, u64)>,
    ) -> Result<BlobProps, ApiError> {
        let (props, garbage) = self
            .put_blob_commit(account, container, name, conds, new, data)
            .await?;
        self.remove_files(garbage);
        Ok(props)
    }

    /// Queues a Put Blob; yields the new properties and the data files to
    /// remove once committed.
    fn put_blob_commit(
        &self,
        account: &str,
        container: &str,
        name: &str,
        conds: &Conditions,
        new: NewBlob,
        data: Option<(String, u64)>,
    ) -> Commit<(BlobProps, Vec<String>)> {
        let (account, container, name, conds) = (
            account.to_string(),
            container.to_string(),
            name.to_string(),
            conds.clone(),
        );
        self.submit(move |tx| {
            let (account, container, name) = (&account[..], &container[..], &name[..]);
            let old = find(tx, account, container, name)?;
            check_overwrite(&conds, old.as_ref())?;
            let extent = data
                .as_ref()
                .map(|(file, size)| (None, *size, file.as_str()));
            let garbage = if old.is_some() {
                replace_extents(tx, account, container, name, extent)?
            } else {
                first_extents(tx, account, container, name, extent)?
            };
            let props = BlobProps {
                blob_type: new.blob_type.as_str().to_string(),
                size: data.as_ref().map_or(0, |d| d.1),
                content: new.content,
                metadata: new.metadata,
                ..BlobProps::replacing(name, old.as_ref())
            };
            if let (Some(bytes), Some((id, _))) = (&new.inline, &data) {
                tx.prepare_cached("INSERT INTO inline_bytes (id, data) VALUES (?1, ?2)")
                    .map_err(db)?
                    .execute(params![id, bytes.as_ref()])
                    .map_err(db)?;
            }
            write_row(tx, account, container, &props)?;
            let files = super::unreferenced(tx, garbage)?;
            Ok((props, files))
        })
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
        let garbage = replace_extents(
            &tx,
            account,
            container,
            name,
            src_extents
                .iter()
                .map(|(id, size, file)| (id.as_deref(), *size, file.as_str())),
        )?;
        let props = BlobProps {
            blob_type: src.blob_type.clone(),
            size: src.size,
            content: src.content.clone(),
            metadata: metadata.unwrap_or(src.metadata),
            copy,
            ..BlobProps::replacing(name, old.as_ref())
        };
        write_row(&tx, account, container, &props)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, garbage);
        Ok(props)
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
}
