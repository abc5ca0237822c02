//! Block blob staging: Put Block, Put Block List, Get Block List.

use rusqlite::{OptionalExtension, params};

use super::blobs::{
    BlobProps, NewBlob, check_overwrite, clear_blocks, committed, files_of, find,
    invalid_blob_type, uncommitted, write_row,
};
use super::{Store, db};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::timefmt::{new_etag, now_millis};
use crate::xml::BlockSource;

/// What Get Block List reports: the blob (once committed) and its blocks.
#[derive(Debug)]
pub struct BlockList {
    pub blob: Option<BlobProps>,
    pub committed: Vec<BlockInfo>,
    pub uncommitted: Vec<BlockInfo>,
}

/// One block in a block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub id: String,
    pub size: u64,
}

impl Store {
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
}
