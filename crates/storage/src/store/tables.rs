//! Tables and entities. Entities are rows keyed (account, table,
//! PartitionKey, RowKey), so point queries and partition scans use the
//! primary key; the rest of a filter is evaluated in Rust. A batch runs in
//! one SQLite transaction: all of it commits or none of it does.

use hyper::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};

use super::containers::{from_json, to_json};
use super::{Commit, Store, db};
use crate::api_error::ApiError;
use crate::table::edm::{self, Entity, Value};
use crate::table::filter::{Filter, KeyBounds, KeyRange};
use crate::table::stored;
use crate::xml::SignedIdentifier;

/// How long one query request scans before it returns what it has with a
/// continuation token (Azure stops at five seconds; a selective filter
/// over a big table then answers in pages, some of them empty).
pub const SCAN_BUDGET: std::time::Duration = std::time::Duration::from_millis(200);

/// An `If-Match` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the entity must exist.
    Any,
    Etag(String),
}

/// One entity write.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityWrite {
    /// Insert Entity: fails if the entity exists.
    Insert {
        partition_key: String,
        row_key: String,
        props: Vec<(String, Value)>,
    },
    /// Update / Merge with `If-Match`, or Insert-or-Replace /
    /// Insert-or-Merge without (`if_match` is `None`).
    Update {
        partition_key: String,
        row_key: String,
        props: Vec<(String, Value)>,
        merge: bool,
        if_match: Option<IfMatch>,
    },
    Delete {
        partition_key: String,
        row_key: String,
        if_match: IfMatch,
    },
}

impl EntityWrite {
    pub fn keys(&self) -> (&str, &str) {
        match self {
            EntityWrite::Insert {
                partition_key,
                row_key,
                ..
            }
            | EntityWrite::Update {
                partition_key,
                row_key,
                ..
            }
            | EntityWrite::Delete {
                partition_key,
                row_key,
                ..
            } => (partition_key, row_key),
        }
    }
}

/// A page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityPage {
    pub entities: Vec<Entity>,
    /// Where the next page starts (PartitionKey, RowKey).
    pub next: Option<(String, String)>,
}

/// What to read.
pub struct EntityQuery<'a> {
    pub filter: Option<&'a Filter>,
    pub top: usize,
    /// Resume at this (PartitionKey, RowKey), inclusive.
    pub resume: Option<(String, String)>,
}

pub fn table_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "TableNotFound",
        "The table specified does not exist.",
    )
}

fn entity_exists() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "EntityAlreadyExists",
        "The specified entity already exists.",
    )
}

pub fn condition_failed() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "UpdateConditionNotSatisfied",
        "The update condition specified in the request was not satisfied.",
    )
}

fn table_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn etags_equal(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().replace("%3A", ":").replace("%3a", ":");
    norm(a) == norm(b)
}

fn corrupt(pk: &str, rk: &str, e: stored::Corrupt) -> ApiError {
    ApiError::internal(format!("stored entity {pk}/{rk} is damaged: {}", e.0))
}

/// A row as SQLite hands it over: columns are read only when asked for,
/// so a row the filter rejects costs one column read and no allocation.
struct RawRow<'a> {
    row: &'a rusqlite::Row<'a>,
}

fn column_error(i: usize, e: rusqlite::types::FromSqlError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

impl<'a> RawRow<'a> {
    fn of(row: &'a rusqlite::Row<'a>) -> RawRow<'a> {
        RawRow { row }
    }

    fn text(&self, i: usize) -> rusqlite::Result<&'a str> {
        self.row
            .get_ref(i)?
            .as_str()
            .map_err(|e| column_error(i, e))
    }

    fn pk(&self) -> rusqlite::Result<&'a str> {
        self.text(0)
    }

    fn rk(&self) -> rusqlite::Result<&'a str> {
        self.text(1)
    }

    fn props(&self) -> rusqlite::Result<&'a [u8]> {
        self.row
            .get_ref(3)?
            .as_bytes()
            .map_err(|e| column_error(3, e))
    }

    /// One property, decoding only that one.
    fn get(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let damaged =
            |e: stored::Corrupt| corrupt(self.pk().unwrap_or("?"), self.rk().unwrap_or("?"), e);
        Ok(match name {
            "PartitionKey" => Some(Value::String(self.pk().map_err(db)?.to_string())),
            "RowKey" => Some(Value::String(self.rk().map_err(db)?.to_string())),
            "Timestamp" => Some(Value::DateTime(self.row.get(2).map_err(db)?)),
            _ => stored::find(self.props().map_err(db)?, name).map_err(damaged)?,
        })
    }

    fn entity(&self) -> Result<Entity, ApiError> {
        let (pk, rk) = (self.pk().map_err(db)?, self.rk().map_err(db)?);
        Ok(Entity {
            partition_key: pk.to_string(),
            row_key: rk.to_string(),
            timestamp: self.row.get(2).map_err(db)?,
            props: stored::decode(self.props().map_err(db)?).map_err(|e| corrupt(pk, rk, e))?,
        })
    }
}

fn push_range(sql: &mut String, args: &mut Vec<String>, column: &str, r: &KeyRange) {
    if let Some((v, inclusive)) = &r.lower {
        args.push(v.clone());
        sql.push_str(&format!(
            " AND {column} {} ?{}",
            if *inclusive { ">=" } else { ">" },
            args.len()
        ));
    }
    if let Some((v, inclusive)) = &r.upper {
        args.push(v.clone());
        sql.push_str(&format!(
            " AND {column} {} ?{}",
            if *inclusive { "<=" } else { "<" },
            args.len()
        ));
    }
}

impl Store {
    /// Creates a table; names compare case-insensitively.
    pub fn create_table(&self, account: &str, name: &str) -> Result<(), ApiError> {
        let conn = self.lock();
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO tables (account, key, name) VALUES (?1, ?2, ?3)",
                params![account, table_key(name), name],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "TableAlreadyExists",
                "The table specified already exists.",
            ));
        }
        Ok(())
    }

    /// Deletes a table and every entity in it, atomically.
    pub fn delete_table(&self, account: &str, name: &str) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let key = table_key(name);
        let n = tx
            .execute(
                "DELETE FROM tables WHERE account=?1 AND key=?2",
                params![account, key],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(table_not_found());
        }
        tx.execute(
            "DELETE FROM entities WHERE account=?1 AND tbl=?2",
            params![account, key],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM table_acls WHERE account=?1 AND key=?2",
            params![account, key],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The table's stored access policies.
    pub fn table_acl(&self, account: &str, name: &str) -> Result<Vec<SignedIdentifier>, ApiError> {
        let conn = self.lock();
        table_name(&conn, account, name)?;
        let acl: Option<String> = conn
            .query_row(
                "SELECT acl FROM table_acls WHERE account=?1 AND key=?2",
                params![account, table_key(name)],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(acl.map(|a| from_json(&a)).unwrap_or_default())
    }

    /// Replaces the table's stored access policies.
    pub fn set_table_acl(
        &self,
        account: &str,
        name: &str,
        acl: &[SignedIdentifier],
    ) -> Result<(), ApiError> {
        let conn = self.lock();
        table_name(&conn, account, name)?;
        conn.execute(
            "INSERT OR REPLACE INTO table_acls (account, key, acl) VALUES (?1, ?2, ?3)",
            params![account, table_key(name), to_json(&acl)],
        )
        .map_err(db)?;
        Ok(())
    }

    /// The table's name as created, or `TableNotFound`.
    pub fn table_name(&self, account: &str, name: &str) -> Result<String, ApiError> {
        table_name(&self.read_lock(), account, name)
    }

    /// Tables in name order from `after` (a table key, inclusive) that
    /// `keep` accepts, at most `top`; and the next table's name, if any.
    pub fn list_tables(
        &self,
        account: &str,
        from: Option<&str>,
        keep: &dyn Fn(&str) -> bool,
        top: usize,
    ) -> Result<(Vec<String>, Option<String>), ApiError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name FROM tables WHERE account=?1 AND key >= ?2 ORDER BY key")
            .map_err(db)?;
        let from = from.map(table_key).unwrap_or_default();
        let mut rows = stmt.query(params![account, from]).map_err(db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            let name: String = row.get(0).map_err(db)?;
            if !keep(&name) {
                continue;
            }
            if out.len() == top {
                return Ok((out, Some(name)));
            }
            out.push(name);
        }
        Ok((out, None))
    }

    /// One entity, or `ResourceNotFound` (`TableNotFound` without the table).
    pub fn get_entity(
        &self,
        account: &str,
        table: &str,
        pk: &str,
        rk: &str,
    ) -> Result<Entity, ApiError> {
        let mut conn = self.read_lock();
        let tx = conn.transaction().map_err(db)?;
        table_name(&tx, account, table)?;
        get(&tx, account, &table_key(table), pk, rk)?.ok_or_else(ApiError::resource_not_found)
    }

    /// Applies one write; returns the entity as stored (`None` after a delete).
    pub fn write_entity(
        &self,
        account: &str,
        table: &str,
        write: EntityWrite,
    ) -> Result<Option<Entity>, ApiError> {
        self.write_entity_async(account, table, write).wait()
    }

    /// [`Store::write_entity`], committed with the next group.
    pub fn write_entity_async(
        &self,
        account: &str,
        table: &str,
        write: EntityWrite,
    ) -> Commit<Option<Entity>> {
        let (account, table) = (account.to_string(), table.to_string());
        // `apply` changes one row, in its last statement.
        self.submit_single(move |conn| {
            table_name(conn, &account, &table)?;
            apply(conn, &account, &table_key(&table), write)
        })
    }

    /// Applies a group of writes in one transaction; on the first failure
    /// nothing is kept and its index comes back with the error.
    pub fn write_batch(
        &self,
        account: &str,
        table: &str,
        writes: Vec<EntityWrite>,
    ) -> Result<Vec<Option<Entity>>, (usize, ApiError)> {
        let (commit, failed_at) = self.write_batch_async(account, table, writes);
        commit
            .wait()
            .map_err(|e| (failed_at.load(std::sync::atomic::Ordering::Relaxed), e))
    }

    /// [`Store::write_batch`], committed with the next group; on failure
    /// the second value holds the failing write's index.
    pub fn write_batch_async(
        &self,
        account: &str,
        table: &str,
        writes: Vec<EntityWrite>,
    ) -> (
        Commit<Vec<Option<Entity>>>,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let (account, table) = (account.to_string(), table.to_string());
        // The index of the failing write travels beside the error.
        let failed_at = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let at = failed_at.clone();
        let commit = self.submit(move |conn| {
            table_name(conn, &account, &table)?;
            let key = table_key(&table);
            let mut out = Vec::with_capacity(writes.len());
            for (i, w) in writes.into_iter().enumerate() {
                at.store(i, std::sync::atomic::Ordering::Relaxed);
                out.push(apply(conn, &account, &key, w)?);
            }
            Ok(out)
        });
        (commit, failed_at)
    }

    /// A page of entities in key order matching the query.
    pub fn query_entities(
        &self,
        account: &str,
        table: &str,
        q: &EntityQuery<'_>,
    ) -> Result<EntityPage, ApiError> {
        let conn = self.read_lock();
        table_name(&conn, account, table)?;
        let bounds = q.filter.map(Filter::key_bounds).unwrap_or_default();
        let mut args = vec![account.to_string(), table_key(table)];
        let mut sql =
            String::from("SELECT pk, rk, ts, props FROM entities WHERE account=?1 AND tbl=?2");
        let KeyBounds { partition, row } = &bounds;
        push_range(&mut sql, &mut args, "pk", partition);
        push_range(&mut sql, &mut args, "rk", row);
        if let Some((pk, rk)) = &q.resume {
            args.push(pk.clone());
            args.push(rk.clone());
            sql.push_str(&format!(
                " AND (pk, rk) >= (?{}, ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        sql.push_str(" ORDER BY pk, rk");
        let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(db)?;
        let mut entities = Vec::new();
        let started = std::time::Instant::now();
        let mut scanned = 0u64;
        while let Some(row) = rows.next().map_err(db)? {
            let raw = RawRow::of(row);
            let out_of_time = scanned % 256 == 255 && started.elapsed() > SCAN_BUDGET;
            if entities.len() == q.top || out_of_time {
                return Ok(EntityPage {
                    entities,
                    next: Some((
                        raw.pk().map_err(db)?.to_string(),
                        raw.rk().map_err(db)?.to_string(),
                    )),
                });
            }
            scanned += 1;
            let matched = match q.filter {
                None => true,
                Some(f) => {
                    let failed = std::cell::Cell::new(None);
                    let m = f.matches(&|n| {
                        raw.get(n).unwrap_or_else(|e| {
                            failed.set(Some(e));
                            None
                        })
                    });
                    if let Some(e) = failed.take() {
                        return Err(e);
                    }
                    m
                }
            };
            if matched {
                entities.push(raw.entity()?);
            }
        }
        Ok(EntityPage {
            entities,
            next: None,
        })
    }
}

fn table_name(conn: &Connection, account: &str, name: &str) -> Result<String, ApiError> {
    conn.prepare_cached("SELECT name FROM tables WHERE account=?1 AND key=?2")
        .map_err(db)?
        .query_row(params![account, table_key(name)], |r| r.get(0))
        .optional()
        .map_err(db)?
        .ok_or_else(table_not_found)
}

fn get(
    conn: &Connection,
    account: &str,
    tkey: &str,
    pk: &str,
    rk: &str,
) -> Result<Option<Entity>, ApiError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT pk, rk, ts, props FROM entities WHERE account=?1 AND tbl=?2 AND pk=?3 AND rk=?4",
        )
        .map_err(db)?;
    let mut rows = stmt.query(params![account, tkey, pk, rk]).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => RawRow::of(row).entity().map(Some),
        None => Ok(None),
    }
}

fn check(current: &Entity, cond: &IfMatch) -> Result<(), ApiError> {
    match cond {
        IfMatch::Any => Ok(()),
        IfMatch::Etag(e) if etags_equal(e, &current.etag()) => Ok(()),
        IfMatch::Etag(_) => Err(condition_failed()),
    }
}

fn put(conn: &Connection, account: &str, tkey: &str, e: &Entity) -> Result<(), ApiError> {
    write_row(
        conn,
        "INSERT OR REPLACE INTO entities (account, tbl, pk, rk, ts, props) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        account,
        tkey,
        e,
    )?;
    Ok(())
}

/// Runs `sql`, an INSERT into `entities` (how it treats a taken key is
/// the caller's), for the entity `e`; returns the rows it wrote.
fn write_row(
    conn: &Connection,
    sql: &str,
    account: &str,
    tkey: &str,
    e: &Entity,
) -> Result<usize, ApiError> {
    conn.prepare_cached(sql)
        .map_err(db)?
        .execute(params![
            account,
            tkey,
            e.partition_key,
            e.row_key,
            e.timestamp,
            stored::encode(&e.props)
        ])
        .map_err(db)
}

fn apply(
    conn: &Connection,
    account: &str,
    tkey: &str,
    write: EntityWrite,
) -> Result<Option<Entity>, ApiError> {
    match write {
        EntityWrite::Insert {
            partition_key,
            row_key,
            props,
        } => {
            let e = Entity {
                partition_key,
                row_key,
                timestamp: crate::table::datetime::now_ticks(),
                props,
            };
            // One statement: nothing is written when the key is taken.
            let added = write_row(
                conn,
                "INSERT OR IGNORE INTO entities (account, tbl, pk, rk, ts, props) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                account,
                tkey,
                &e,
            )?;
            if added == 0 {
                return Err(entity_exists());
            }
            Ok(Some(e))
        }
        EntityWrite::Update {
            partition_key,
            row_key,
            props,
            merge,
            if_match,
        } => {
            let current = get(conn, account, tkey, &partition_key, &row_key)?;
            let mut merged = match (&current, &if_match) {
                (None, Some(_)) => return Err(ApiError::resource_not_found()),
                (Some(cur), Some(cond)) => {
                    check(cur, cond)?;
                    if merge { cur.props.clone() } else { Vec::new() }
                }
                (Some(cur), None) if merge => cur.props.clone(),
                _ => Vec::new(),
            };
            for (n, v) in props {
                match merged.iter_mut().find(|(m, _)| *m == n) {
                    Some(slot) => slot.1 = v,
                    None => merged.push((n, v)),
                }
            }
            // A merge can grow an entity past the limits its body met.
            edm::check_entity_limits(Some(&partition_key), Some(&row_key), &merged)?;
            let e = Entity {
                partition_key,
                row_key,
                timestamp: crate::table::datetime::now_ticks(),
                props: merged,
            };
            put(conn, account, tkey, &e)?;
            Ok(Some(e))
        }
        EntityWrite::Delete {
            partition_key,
            row_key,
            if_match,
        } => {
            let Some(cur) = get(conn, account, tkey, &partition_key, &row_key)? else {
                return Err(ApiError::resource_not_found());
            };
            check(&cur, &if_match)?;
            conn.prepare_cached(
                "DELETE FROM entities WHERE account=?1 AND tbl=?2 AND pk=?3 AND rk=?4",
            )
            .map_err(db)?
            .execute(params![account, tkey, partition_key, row_key])
            .map_err(db)?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(pk: &str, rk: &str, n: i32) -> EntityWrite {
        EntityWrite::Insert {
            partition_key: pk.into(),
            row_key: rk.into(),
            props: vec![("N".into(), Value::Int32(n))],
        }
    }

    #[test]
    fn a_failing_batch_keeps_nothing_and_names_the_failing_operation() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        s.create_table("a", "Orders").unwrap();
        assert_eq!(
            s.create_table("a", "orders").unwrap_err().code,
            "TableAlreadyExists"
        );
        s.write_entity("a", "orders", write("p", "1", 1)).unwrap();
        let (i, e) = s
            .write_batch("a", "ORDERS", vec![write("p", "2", 2), write("p", "1", 1)])
            .unwrap_err();
        assert_eq!((i, e.code), (1, "EntityAlreadyExists"));
        assert_eq!(
            s.get_entity("a", "orders", "p", "2").unwrap_err().code,
            "ResourceNotFound"
        );
        let all = s
            .query_entities(
                "a",
                "orders",
                &EntityQuery {
                    filter: None,
                    top: 10,
                    resume: None,
                },
            )
            .unwrap();
        assert_eq!(all.entities.len(), 1);
        assert_eq!(s.table_name("a", "oRdErS").unwrap(), "Orders");
    }

    #[test]
    fn pages_visit_every_entity_once() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        s.create_table("a", "t1").unwrap();
        let batch: Vec<_> = (0..25).map(|i| write("p", &format!("{i:03}"), i)).collect();
        s.write_batch("a", "t1", batch).unwrap();
        let odd = Filter::parse("N ge 0 and RowKey ge '001'").unwrap();
        let mut seen = Vec::new();
        let mut resume = None;
        loop {
            let page = s
                .query_entities(
                    "a",
                    "t1",
                    &EntityQuery {
                        filter: Some(&odd),
                        top: 7,
                        resume,
                    },
                )
                .unwrap();
            seen.extend(page.entities.iter().map(|e| e.row_key.clone()));
            match page.next {
                Some(n) => resume = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = (1..25).map(|i| format!("{i:03}")).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn conditional_updates_and_merges() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        s.create_table("a", "t1").unwrap();
        let e = s
            .write_entity("a", "t1", write("p", "r", 1))
            .unwrap()
            .unwrap();
        let upd = |merge, cond: Option<IfMatch>, props: Vec<(String, Value)>| EntityWrite::Update {
            partition_key: "p".into(),
            row_key: "r".into(),
            props,
            merge,
            if_match: cond,
        };
        let stale = IfMatch::Etag("W/\"datetime'2000-01-01T00%3A00%3A00Z'\"".into());
        assert_eq!(
            s.write_entity("a", "t1", upd(false, Some(stale.clone()), vec![]))
                .unwrap_err()
                .code,
            "UpdateConditionNotSatisfied"
        );
        let m = s
            .write_entity(
                "a",
                "t1",
                upd(
                    true,
                    Some(IfMatch::Etag(e.etag())),
                    vec![("M".into(), Value::Bool(true))],
                ),
            )
            .unwrap()
            .unwrap();
        assert_eq!(m.props.len(), 2);
        assert_ne!(m.etag(), e.etag());
        let r = s
            .write_entity("a", "t1", upd(false, None, vec![]))
            .unwrap()
            .unwrap();
        assert!(r.props.is_empty());
        assert_eq!(
            s.write_entity(
                "a",
                "t1",
                EntityWrite::Delete {
                    partition_key: "p".into(),
                    row_key: "r".into(),
                    if_match: stale
                }
            )
            .unwrap_err()
            .code,
            "UpdateConditionNotSatisfied"
        );
        assert_eq!(
            s.write_entity("a", "t1", upd(true, Some(IfMatch::Any), vec![]))
                .map(|e| e.is_some()),
            Ok(true)
        );
        s.delete_table("a", "T1").unwrap();
        assert_eq!(
            s.get_entity("a", "t1", "p", "r").unwrap_err().code,
            "TableNotFound"
        );
    }

    /// Merges that would grow an entity past 1 MiB or 252 properties are
    /// refused and leave it as it was, alone or inside a batch.
    #[test]
    fn merges_past_the_entity_limits_change_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::open(tmp.path()).unwrap();
        s.create_table("a", "t1").unwrap();
        let big = |from: usize, n: usize| -> Vec<(String, Value)> {
            (from..from + n)
                .map(|i| (format!("P{i}"), Value::String("x".repeat(30_000))))
                .collect()
        };
        let merge = |props, if_match| EntityWrite::Update {
            partition_key: "p".into(),
            row_key: "r".into(),
            props,
            merge: true,
            if_match,
        };
        // 15 x 60 KB now, then 5 x 60 KB more is past 1 MiB.
        let first = s
            .write_entity("a", "t1", merge(big(0, 15), None))
            .unwrap()
            .unwrap();
        for cond in [None, Some(IfMatch::Any)] {
            assert_eq!(
                s.write_entity("a", "t1", merge(big(15, 5), cond))
                    .unwrap_err()
                    .code,
                "EntityTooLarge"
            );
        }
        let (i, e) = s
            .write_batch(
                "a",
                "t1",
                vec![write("p", "other", 1), merge(big(15, 5), None)],
            )
            .unwrap_err();
        assert_eq!((i, e.code), (1, "EntityTooLarge"));
        assert_eq!(
            s.get_entity("a", "t1", "p", "other").unwrap_err().code,
            "ResourceNotFound"
        );
        let many: Vec<(String, Value)> = (100..340)
            .map(|i| (format!("Q{i}"), Value::Int32(i)))
            .collect();
        assert_eq!(
            s.write_entity("a", "t1", merge(many, None))
                .unwrap_err()
                .code,
            "TooManyProperties"
        );
        assert_eq!(s.get_entity("a", "t1", "p", "r").unwrap(), first);
    }
}
