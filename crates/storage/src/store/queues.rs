//! Queues and their messages. A message is visible when its
//! `visible_at` has passed and it has not expired; Get Messages makes it
//! invisible for the visibility timeout and issues a new pop receipt, so a
//! message not deleted in time reappears (at-least-once delivery).

use rusqlite::{OptionalExtension, params};

use super::containers::{from_json, to_json};
use super::{Commit, Store, db};
use crate::api_error::ApiError;
use crate::timefmt::now_millis;
use crate::xml::SignedIdentifier;

/// A queue's stored properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueProps {
    pub name: String,
    pub metadata: Vec<(String, String)>,
}

/// A message as the protocol reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub text: String,
    pub inserted_ms: i64,
    pub expires_ms: i64,
    pub visible_ms: i64,
    pub pop_receipt: String,
    pub dequeue_count: i64,
}

/// One page of a queue listing.
#[derive(Debug, Default)]
pub struct ListedQueues {
    pub items: Vec<QueueProps>,
    pub next_marker: Option<String>,
}

pub fn queue_not_found() -> ApiError {
    ApiError::new(
        hyper::StatusCode::NOT_FOUND,
        "QueueNotFound",
        "The specified queue does not exist.",
    )
}

fn message_not_found() -> ApiError {
    ApiError::new(
        hyper::StatusCode::NOT_FOUND,
        "MessageNotFound",
        "The specified message does not exist.",
    )
}

fn pop_receipt_mismatch() -> ApiError {
    ApiError::new(
        hyper::StatusCode::NOT_FOUND,
        "PopReceiptMismatch",
        "The specified pop receipt did not match the pop receipt for a dequeued message.",
    )
}

fn get_queue(
    conn: &rusqlite::Connection,
    account: &str,
    name: &str,
) -> Result<QueueProps, ApiError> {
    conn.prepare_cached("SELECT name, metadata FROM queues WHERE account=?1 AND name=?2")
        .map_err(db)?
        .query_row(params![account, name], |r| {
            Ok(QueueProps {
                name: r.get(0)?,
                metadata: from_json(&r.get::<_, String>(1)?),
            })
        })
        .optional()
        .map_err(db)?
        .ok_or_else(queue_not_found)
}

/// Up to `count` messages visible at `now`, oldest first.
fn visible_messages(
    conn: &rusqlite::Connection,
    account: &str,
    queue: &str,
    count: usize,
    now: i64,
) -> Result<Vec<Message>, ApiError> {
    get_queue(conn, account, queue)?;
    let mut st = conn
        .prepare_cached(
            "SELECT id, text, inserted, expires, visible_at, pop_receipt, dequeue_count FROM messages
             WHERE account=?1 AND queue=?2 AND visible_at<=?3 AND expires>?3
             ORDER BY visible_at, inserted LIMIT ?4",
        )
        .map_err(db)?;
    st.query_map(params![account, queue, now, count as i64], |r| {
        Ok(Message {
            id: r.get(0)?,
            text: r.get(1)?,
            inserted_ms: r.get(2)?,
            expires_ms: r.get(3)?,
            visible_ms: r.get(4)?,
            pop_receipt: r.get(5)?,
            dequeue_count: r.get(6)?,
        })
    })
    .map_err(db)?
    .collect::<Result<_, _>>()
    .map_err(db)
}

fn new_receipt() -> String {
    crate::ids::unique().simple().to_string()
}

impl Store {
    /// Create Queue: `true` when created, `false` when it already existed
    /// with the same metadata; different metadata is 409 `QueueAlreadyExists`.
    pub fn create_queue(
        &self,
        account: &str,
        name: &str,
        metadata: &[(String, String)],
    ) -> Result<bool, ApiError> {
        let conn = self.lock();
        match get_queue(&conn, account, name) {
            Ok(q) if q.metadata == metadata => Ok(false),
            Ok(_) => Err(ApiError::new(
                hyper::StatusCode::CONFLICT,
                "QueueAlreadyExists",
                "The specified queue already exists.",
            )),
            Err(e) if e.code == "QueueNotFound" => {
                conn.execute(
                    "INSERT INTO queues (account, name, metadata) VALUES (?1, ?2, ?3)",
                    params![account, name, to_json(&metadata)],
                )
                .map_err(db)?;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    pub fn delete_queue(&self, account: &str, name: &str) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        get_queue(&tx, account, name)?;
        tx.execute(
            "DELETE FROM messages WHERE account=?1 AND queue=?2",
            params![account, name],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM queues WHERE account=?1 AND name=?2",
            params![account, name],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM queue_acls WHERE account=?1 AND name=?2",
            params![account, name],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The queue's stored access policies (Get Queue ACL).
    pub fn queue_acl(&self, account: &str, name: &str) -> Result<Vec<SignedIdentifier>, ApiError> {
        let mut conn = self.read_lock();
        let tx = conn.transaction().map_err(db)?;
        get_queue(&tx, account, name)?;
        let acl: Option<String> = tx
            .prepare_cached("SELECT acl FROM queue_acls WHERE account=?1 AND name=?2")
            .map_err(db)?
            .query_row(params![account, name], |r| r.get(0))
            .optional()
            .map_err(db)?;
        Ok(acl.map(|a| from_json(&a)).unwrap_or_default())
    }

    /// Replaces the queue's stored access policies (Set Queue ACL).
    pub fn set_queue_acl(
        &self,
        account: &str,
        name: &str,
        acl: &[SignedIdentifier],
    ) -> Result<(), ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        get_queue(&tx, account, name)?;
        tx.execute(
            "INSERT OR REPLACE INTO queue_acls (account, name, acl) VALUES (?1, ?2, ?3)",
            params![account, name, to_json(&acl)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The queue and its approximate message count.
    pub fn queue_properties(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(QueueProps, i64), ApiError> {
        let conn = self.lock();
        let q = get_queue(&conn, account, name)?;
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages WHERE account=?1 AND queue=?2 AND expires>?3",
                params![account, name, now_millis()],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok((q, n))
    }

    pub fn set_queue_metadata(
        &self,
        account: &str,
        name: &str,
        metadata: &[(String, String)],
    ) -> Result<(), ApiError> {
        let conn = self.lock();
        get_queue(&conn, account, name)?;
        conn.execute(
            "UPDATE queues SET metadata=?3 WHERE account=?1 AND name=?2",
            params![account, name, to_json(&metadata)],
        )
        .map_err(db)?;
        Ok(())
    }

    pub fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        marker: &str,
        max: usize,
    ) -> Result<ListedQueues, ApiError> {
        let conn = self.lock();
        let start = if marker > prefix { marker } else { prefix };
        let mut st = conn
            .prepare_cached(
                "SELECT name, metadata FROM queues WHERE account=?1 AND name>=?2 AND substr(name, 1, ?3)=?4
                 ORDER BY name LIMIT ?5",
            )
            .map_err(db)?;
        let mut items: Vec<QueueProps> = st
            .query_map(
                params![
                    account,
                    start,
                    prefix.chars().count() as i64,
                    prefix,
                    max as i64 + 1
                ],
                |r| {
                    Ok(QueueProps {
                        name: r.get(0)?,
                        metadata: from_json(&r.get::<_, String>(1)?),
                    })
                },
            )
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let next_marker = if items.len() > max {
            items.pop().map(|q| q.name)
        } else {
            None
        };
        Ok(ListedQueues { items, next_marker })
    }

    /// Put Message: visible after `visibility_s`, gone after `ttl_s`
    /// (`None`: never expires).
    pub fn put_message(
        &self,
        account: &str,
        queue: &str,
        text: &str,
        visibility_s: i64,
        ttl_s: Option<i64>,
    ) -> Result<Message, ApiError> {
        self.put_message_async(account, queue, text, visibility_s, ttl_s)
            .wait()
    }

    /// [`Store::put_message`], committed with the next group.
    pub fn put_message_async(
        &self,
        account: &str,
        queue: &str,
        text: &str,
        visibility_s: i64,
        ttl_s: Option<i64>,
    ) -> Commit<Message> {
        let (account, queue, text) = (account.to_string(), queue.to_string(), text.to_string());
        // One INSERT, the last statement.
        self.submit_single(move |conn| {
            get_queue(conn, &account, &queue)?;
            let now = now_millis();
            let m = Message {
                id: crate::ids::unique().to_string(),
                text,
                inserted_ms: now,
                expires_ms: ttl_s
                    .map_or(i64::MAX, |t| now.saturating_add(t.saturating_mul(1000))),
                visible_ms: now + visibility_s * 1000,
                pop_receipt: new_receipt(),
                dequeue_count: 0,
            };
            conn.prepare_cached(
                "INSERT INTO messages (account, queue, id, text, inserted, expires, visible_at, pop_receipt, dequeue_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
            )
            .map_err(db)?
            .execute(params![
                account,
                queue,
                m.id,
                m.text,
                m.inserted_ms,
                m.expires_ms,
                m.visible_ms,
                m.pop_receipt
            ])
            .map_err(db)?;
            Ok(m)
        })
    }

    /// Get Messages (`visibility_s: Some`) or Peek Messages (`None`).
    pub fn get_messages(
        &self,
        account: &str,
        queue: &str,
        count: usize,
        visibility_s: Option<i64>,
    ) -> Result<Vec<Message>, ApiError> {
        match visibility_s {
            None => {
                let mut conn = self.read_lock();
                let tx = conn.transaction().map_err(db)?;
                visible_messages(&tx, account, queue, count, now_millis())
            }
            Some(_) => self
                .get_messages_async(account, queue, count, visibility_s)
                .wait(),
        }
    }

    /// [`Store::get_messages`], committed with the next group (a peek
    /// changes nothing but still waits its turn).
    pub fn get_messages_async(
        &self,
        account: &str,
        queue: &str,
        count: usize,
        visibility_s: Option<i64>,
    ) -> Commit<Vec<Message>> {
        let (account, queue) = (account.to_string(), queue.to_string());
        self.submit(move |conn| {
            let now = now_millis();
            let mut msgs = visible_messages(conn, &account, &queue, count, now)?;
            if let Some(vt) = visibility_s {
                let mut st = conn
                    .prepare_cached(
                        "UPDATE messages SET visible_at=?4, pop_receipt=?5, dequeue_count=?6
                         WHERE account=?1 AND queue=?2 AND id=?3",
                    )
                    .map_err(db)?;
                for m in &mut msgs {
                    m.visible_ms = now + vt * 1000;
                    m.pop_receipt = new_receipt();
                    m.dequeue_count += 1;
                    st.execute(params![
                        account,
                        queue,
                        m.id,
                        m.visible_ms,
                        m.pop_receipt,
                        m.dequeue_count
                    ])
                    .map_err(db)?;
                }
            }
            Ok(msgs)
        })
    }

    fn check_receipt(
        conn: &rusqlite::Connection,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
    ) -> Result<(), ApiError> {
        get_queue(conn, account, queue)?;
        let current: Option<String> = conn
            .prepare_cached(
                "SELECT pop_receipt FROM messages WHERE account=?1 AND queue=?2 AND id=?3 AND expires>?4",
            )
            .map_err(db)?
            .query_row(params![account, queue, id, now_millis()], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match current {
            None => Err(message_not_found()),
            Some(r) if r != receipt => Err(pop_receipt_mismatch()),
            Some(_) => Ok(()),
        }
    }

    pub fn delete_message(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
    ) -> Result<(), ApiError> {
        self.delete_message_async(account, queue, id, receipt)
            .wait()
    }

    /// [`Store::delete_message`], committed with the next group.
    pub fn delete_message_async(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
    ) -> Commit<()> {
        let [account, queue, id, receipt] = owned([account, queue, id, receipt]);
        // Checks, then one DELETE.
        self.submit_single(move |conn| {
            Self::check_receipt(conn, &account, &queue, &id, &receipt)?;
            conn.prepare_cached("DELETE FROM messages WHERE account=?1 AND queue=?2 AND id=?3")
                .map_err(db)?
                .execute(params![account, queue, id])
                .map_err(db)?;
            Ok(())
        })
    }

    /// Update Message: new visibility (and text); returns the new pop
    /// receipt and visibility time.
    pub fn update_message(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
        visibility_s: i64,
        text: Option<&str>,
    ) -> Result<(String, i64), ApiError> {
        self.update_message_async(account, queue, id, receipt, visibility_s, text)
            .wait()
    }

    /// [`Store::update_message`], committed with the next group.
    pub fn update_message_async(
        &self,
        account: &str,
        queue: &str,
        id: &str,
        receipt: &str,
        visibility_s: i64,
        text: Option<&str>,
    ) -> Commit<(String, i64)> {
        let [account, queue, id, receipt] = owned([account, queue, id, receipt]);
        let text = text.map(str::to_string);
        self.submit(move |conn| {
            Self::check_receipt(conn, &account, &queue, &id, &receipt)?;
            let visible = now_millis() + visibility_s * 1000;
            let new = new_receipt();
            conn.execute(
                "UPDATE messages SET visible_at=?4, pop_receipt=?5, text=coalesce(?6, text)
                 WHERE account=?1 AND queue=?2 AND id=?3",
                params![account, queue, id, visible, new, text],
            )
            .map_err(db)?;
            Ok((new, visible))
        })
    }

    pub fn clear_messages(&self, account: &str, queue: &str) -> Result<(), ApiError> {
        let conn = self.lock();
        get_queue(&conn, account, queue)?;
        conn.execute(
            "DELETE FROM messages WHERE account=?1 AND queue=?2",
            params![account, queue],
        )
        .map_err(db)?;
        Ok(())
    }
}

/// The names a queued write works on, owned, to move into its closure.
fn owned<const N: usize>(names: [&str; N]) -> [String; N] {
    names.map(str::to_string)
}
