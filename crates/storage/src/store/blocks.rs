//! Block blob staging: Put Block, Put Block List, Get Block List.

use rusqlite::{OptionalExtension, params};

use super::blobs::{
    BlobProps, NewBlob, check_overwrite, committed, find, invalid_blob_type, replace_extents,
    uncommitted, write_row,
};
use super::{Store, db};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::timefmt::now_millis;
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
        let garbage = replace_extents(
            &tx,
            account,
            container,
            name,
            chosen
                .iter()
                .map(|(id, size, file)| (Some(id.as_str()), *size, file.as_str())),
        )?;
        let props = BlobProps {
            blob_type: "BlockBlob".into(),
            size: chosen.iter().map(|c| c.1).sum(),
            content: new.content,
            metadata: new.metadata,
            ..BlobProps::replacing(name, old.as_ref())
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
