//! Container rows: create, read, list, update, delete.

use rusqlite::{OptionalExtension, params};

use super::{Store, db};
use crate::api_error::ApiError;
use crate::conditions::{Conditions, Current};
use crate::timefmt::{new_etag, now_millis};
use crate::xml::SignedIdentifier;

/// A container's stored properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerProps {
    pub name: String,
    pub etag: String,
    pub last_modified_ms: i64,
    pub metadata: Vec<(String, String)>,
    /// `container`, `blob`, or `None` for private.
    pub public_access: Option<String>,
    pub acl: Vec<SignedIdentifier>,
    pub lease: Option<crate::lease::Lease>,
}

impl ContainerProps {
    pub fn current(&self) -> Current<'_> {
        Current {
            etag: &self.etag,
            last_modified_ms: self.last_modified_ms,
        }
    }
}

/// One page of a container listing.
#[derive(Debug, Default)]
pub struct ListedContainers {
    pub items: Vec<ContainerProps>,
    pub next_marker: Option<String>,
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

const COLS: &str = "name, etag, last_modified, metadata, public_access, acl, lease";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerProps> {
    Ok(ContainerProps {
        name: r.get(0)?,
        etag: r.get(1)?,
        last_modified_ms: r.get(2)?,
        metadata: from_json(&r.get::<_, String>(3)?),
        public_access: r.get(4)?,
        acl: from_json(&r.get::<_, String>(5)?),
        lease: r
            .get::<_, Option<String>>(6)?
            .and_then(|l| serde_json::from_str(&l).ok()),
    })
}

impl Store {
    pub fn create_container(
        &self,
        account: &str,
        name: &str,
        metadata: &[(String, String)],
        public_access: Option<&str>,
    ) -> Result<ContainerProps, ApiError> {
        let conn = self.lock();
        let props = ContainerProps {
            name: name.to_string(),
            etag: new_etag(),
            last_modified_ms: now_millis(),
            metadata: metadata.to_vec(),
            public_access: public_access.map(str::to_string),
            acl: Vec::new(),
            lease: None,
        };
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO containers (account, name, etag, last_modified, metadata, public_access, acl)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]')",
                params![account, name, props.etag, props.last_modified_ms, to_json(&props.metadata), props.public_access],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(ApiError::container_exists());
        }
        Ok(props)
    }

    pub fn get_container(&self, account: &str, name: &str) -> Result<ContainerProps, ApiError> {
        let conn = self.read_lock();
        get(&conn, account, name)
    }

    /// Updates metadata and/or the ACL under the given conditions.
    pub fn update_container(
        &self,
        account: &str,
        name: &str,
        conds: &Conditions,
        metadata: Option<&[(String, String)]>,
        acl: Option<(Option<&str>, &[SignedIdentifier])>,
    ) -> Result<ContainerProps, ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut props = get(&tx, account, name)?;
        conds.check(Some(props.current()), false)?;
        crate::lease::check_write(
            props.lease.as_ref(),
            conds.lease_id.as_deref(),
            crate::lease::Target::Container,
            false,
            now_millis(),
        )?;
        if let Some(m) = metadata {
            props.metadata = m.to_vec();
        }
        if let Some((public, ids)) = acl {
            props.public_access = public.map(str::to_string);
            props.acl = ids.to_vec();
        }
        props.etag = new_etag();
        props.last_modified_ms = now_millis();
        tx.execute(
            "UPDATE containers SET etag=?3, last_modified=?4, metadata=?5, public_access=?6, acl=?7
             WHERE account=?1 AND name=?2",
            params![
                account,
                name,
                props.etag,
                props.last_modified_ms,
                to_json(&props.metadata),
                props.public_access,
                to_json(&props.acl)
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(props)
    }

    /// Runs a lease operation on a container.
    pub fn lease_container(
        &self,
        account: &str,
        name: &str,
        conds: &Conditions,
        action: crate::lease::LeaseAction,
    ) -> Result<(ContainerProps, crate::lease::LeaseOutcome), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut props = get(&tx, account, name)?;
        conds.check(Some(props.current()), false)?;
        let outcome = crate::lease::apply(props.lease.as_ref(), action, now_millis())?;
        props.lease = outcome.lease.clone();
        tx.execute(
            "UPDATE containers SET lease=?3 WHERE account=?1 AND name=?2",
            params![account, name, props.lease.as_ref().map(to_json)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((props, outcome))
    }

    /// Deletes a container and every blob in it.
    pub fn delete_container(
        &self,
        account: &str,
        name: &str,
        conds: &Conditions,
    ) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let props = get(&tx, account, name)?;
        conds.check(Some(props.current()), false)?;
        crate::lease::check_write(
            props.lease.as_ref(),
            conds.lease_id.as_deref(),
            crate::lease::Target::Container,
            true,
            now_millis(),
        )?;
        let files: Vec<String> = {
            let mut st = tx
                .prepare(
                    "SELECT file FROM extents WHERE account=?1 AND container=?2
                     UNION SELECT file FROM uncommitted WHERE account=?1 AND container=?2
                     UNION SELECT file FROM snapshot_extents WHERE account=?1 AND container=?2",
                )
                .map_err(db)?;
            st.query_map(params![account, name], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        for table in [
            "extents",
            "uncommitted",
            "blobs",
            "snapshots",
            "snapshot_extents",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE account=?1 AND container=?2"),
                params![account, name],
            )
            .map_err(db)?;
        }
        tx.execute(
            "DELETE FROM containers WHERE account=?1 AND name=?2",
            params![account, name],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.collect_garbage(&conn, files);
        Ok(())
    }

    /// Containers whose names start with `prefix`, from `marker` on, at
    /// most `max`; `next_marker` names the first one not returned.
    pub fn list_containers(
        &self,
        account: &str,
        prefix: &str,
        marker: &str,
        max: usize,
    ) -> Result<ListedContainers, ApiError> {
        let conn = self.lock();
        let start = if marker > prefix { marker } else { prefix };
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM containers WHERE account=?1 AND name>=?2 AND substr(name, 1, ?3)=?4
                 ORDER BY name LIMIT ?5"
            ))
            .map_err(db)?;
        let mut items: Vec<ContainerProps> = st
            .query_map(
                params![
                    account,
                    start,
                    prefix.chars().count() as i64,
                    prefix,
                    max as i64 + 1
                ],
                row,
            )
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let next_marker = if items.len() > max {
            items.pop().map(|c| c.name)
        } else {
            None
        };
        Ok(ListedContainers { items, next_marker })
    }
}

pub(crate) fn get(
    conn: &rusqlite::Connection,
    account: &str,
    name: &str,
) -> Result<ContainerProps, ApiError> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM containers WHERE account=?1 AND name=?2"
    ))
    .map_err(db)?
    .query_row(params![account, name], row)
    .optional()
    .map_err(db)?
    .ok_or_else(ApiError::container_not_found)
}
