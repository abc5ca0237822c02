//! The queue service (port 10001): queues, metadata and messages with
//! visibility timeouts, pop receipts, dequeue counts and time-to-live.
//! Requests share the blob service's front door (authentication, errors,
//! common headers); callers are authorized in [`access`]: account key,
//! account SAS, or a queue service SAS (with stored access policies, Get /
//! Set Queue ACL).

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};

use crate::api_error::ApiError;
use crate::blob::body::{self, Body};
use crate::blob::enumeration::{Paging, close, include, push_metadata, push_tag};
use crate::blob::headers::{metadata, put_metadata};
use crate::blob::{Ctx, blocking, hv};
use crate::store::Message;
use crate::timefmt::rfc1123;
use crate::xml::{parse_signed_identifiers, write_signed_identifiers};

pub mod access;

use access::{QueueOp, authorize};

/// Largest message text (64 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest visibility timeout and default time-to-live: seven days.
const SEVEN_DAYS: i64 = 7 * 24 * 3600;

fn out_of_range(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "OutOfRangeQueryParameterValue",
        format!(
            "One of the query parameters specified in the request URI is outside the permissible range: {name}."
        ),
    )
}

/// An integer query parameter within `range`, or `default` when absent.
fn int_param(
    ctx: &Ctx,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: Option<i64>,
) -> Result<i64, ApiError> {
    match ctx.query.get(name) {
        None => default.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MissingRequiredQueryParameter",
                format!(
                    "A query parameter that's mandatory for this request is not specified: {name}."
                ),
            )
        }),
        Some(v) => {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid_query(name))?;
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(out_of_range(name))
            }
        }
    }
}

fn status(s: StatusCode) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = s;
    r
}

fn xml(s: String) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from(s)));
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hv("application/xml"));
    r
}

fn time(ms: i64) -> String {
    if ms == i64::MAX {
        "Fri, 31 Dec 9999 23:59:59 GMT".to_string()
    } else {
        rfc1123(ms)
    }
}

/// Serves a queue request after authentication.
pub async fn dispatch(
    ctx: &Ctx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let comp = ctx.query.get("comp");
    let m = ctx.method.clone();
    let queue = ctx.addr.container.clone();
    let rest = ctx.addr.blob.clone();
    if queue.as_deref().is_some_and(|q| q.starts_with('$')) {
        return Err(ApiError::invalid_resource_name());
    }
    let Some(q) = queue else {
        return match (m, comp) {
            (Method::GET, Some("list")) => {
                authorize(ctx, QueueOp::ListQueues)?;
                list_queues(ctx).await
            }
            _ => Err(ApiError::unsupported()),
        };
    };
    let (state, account) = (ctx.state.clone(), ctx.account().to_string());
    match rest.as_deref() {
        None => match (m, comp) {
            (Method::PUT, None) => {
                authorize(ctx, QueueOp::CreateQueue)?;
                create(ctx, q).await
            }
            (Method::DELETE, None) => {
                authorize(ctx, QueueOp::DeleteQueue)?;
                blocking(move || state.store.delete_queue(&account, &q)).await?;
                Ok(status(StatusCode::NO_CONTENT))
            }
            (Method::GET | Method::HEAD, Some("metadata")) => {
                authorize(ctx, QueueOp::GetMetadata)?;
                properties(ctx, q).await
            }
            (Method::PUT, Some("metadata")) => {
                authorize(ctx, QueueOp::SetMetadata)?;
                let meta = metadata(&ctx.headers)?;
                blocking(move || state.store.set_queue_metadata(&account, &q, &meta)).await?;
                Ok(status(StatusCode::NO_CONTENT))
            }
            (Method::GET | Method::HEAD, Some("acl")) => {
                authorize(ctx, QueueOp::GetAcl)?;
                let acl = blocking(move || state.store.queue_acl(&account, &q)).await?;
                Ok(xml(write_signed_identifiers(&acl)))
            }
            (Method::PUT, Some("acl")) => {
                authorize(ctx, QueueOp::SetAcl)?;
                let raw = body::read_small(body::take(incoming)?, 64 * 1024).await?;
                let acl = parse_signed_identifiers(&raw)?;
                blocking(move || state.store.set_queue_acl(&account, &q, &acl)).await?;
                Ok(status(StatusCode::NO_CONTENT))
            }
            _ => Err(ApiError::unsupported()),
        },
        Some("messages") => match m {
            Method::POST => {
                authorize(ctx, QueueOp::PutMessage)?;
                put_message(ctx, q, incoming).await
            }
            Method::GET => get_messages(ctx, q).await,
            Method::DELETE => {
                authorize(ctx, QueueOp::ClearMessages)?;
                blocking(move || state.store.clear_messages(&account, &q)).await?;
                Ok(status(StatusCode::NO_CONTENT))
            }
            _ => Err(ApiError::unsupported()),
        },
        Some(path) => {
            let Some(id) = path
                .strip_prefix("messages/")
                .filter(|id| !id.is_empty() && !id.contains('/'))
            else {
                return Err(ApiError::resource_not_found());
            };
            let id = id.to_string();
            let op = match m {
                Method::DELETE => QueueOp::DeleteMessage,
                Method::PUT => QueueOp::UpdateMessage,
                _ => return Err(ApiError::unsupported()),
            };
            authorize(ctx, op)?;
            let receipt = ctx
                .query
                .get("popreceipt")
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "MissingRequiredQueryParameter",
                        "A query parameter that's mandatory for this request is not specified: popreceipt.",
                    )
                })?
                .to_string();
            match op {
                QueueOp::DeleteMessage => {
                    state
                        .store
                        .delete_message_async(&account, &q, &id, &receipt)
                        .await?;
                    Ok(status(StatusCode::NO_CONTENT))
                }
                _ => update_message(ctx, q, id, receipt, incoming).await,
            }
        }
    }
}

async fn create(ctx: &Ctx, q: String) -> Result<Response<Body>, ApiError> {
    let meta = metadata(&ctx.headers)?;
    let (state, account) = (ctx.state.clone(), ctx.account().to_string());
    let created = blocking(move || state.store.create_queue(&account, &q, &meta)).await?;
    Ok(status(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }))
}

async fn properties(ctx: &Ctx, q: String) -> Result<Response<Body>, ApiError> {
    let (state, account) = (ctx.state.clone(), ctx.account().to_string());
    let (props, count) = blocking(move || state.store.queue_properties(&account, &q)).await?;
    let mut r = status(StatusCode::OK);
    let h = r.headers_mut();
    put_metadata(h, &props.metadata);
    h.insert("x-ms-approximate-messages-count", hv(&count.to_string()));
    Ok(r)
}

async fn list_queues(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let paging = Paging::parse(ctx)?;
    crate::blob::enumeration::check_include(ctx, &["metadata"])?;
    let with_meta = include(ctx, "metadata");
    let page = paging
        .fetch(ctx, |store, account, p| {
            store.list_queues(account, &p.prefix, &p.marker, p.max)
        })
        .await?;
    let mut s = paging.open(ctx, &[]);
    s.push_str("<Queues>");
    for q in &page.items {
        s.push_str("<Queue>");
        push_tag(&mut s, "Name", &q.name);
        if with_meta {
            push_metadata(&mut s, &q.metadata);
        }
        s.push_str("</Queue>");
    }
    s.push_str("</Queues>");
    Ok(close(s, page.next_marker.as_deref()))
}

/// The text of a `<QueueMessage><MessageText>..</MessageText></QueueMessage>` body.
pub fn parse_message(body: &[u8]) -> Result<String, ApiError> {
    let root = crate::xml::parse_document(body)?;
    if root.name != "QueueMessage" {
        return Err(ApiError::invalid_xml());
    }
    let text = root
        .child("MessageText")
        .ok_or_else(ApiError::invalid_xml)?
        .text
        .clone();
    if text.len() > MAX_MESSAGE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MessageTooLarge",
            "The message exceeds the maximum allowed size.",
        ));
    }
    Ok(text)
}

enum Fields {
    Put,
    Get,
    Peek,
}

fn messages_xml(msgs: &[Message], fields: Fields) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>");
    for m in msgs {
        s.push_str("<QueueMessage>");
        push_tag(&mut s, "MessageId", &m.id);
        push_tag(&mut s, "InsertionTime", &time(m.inserted_ms));
        push_tag(&mut s, "ExpirationTime", &time(m.expires_ms));
        if !matches!(fields, Fields::Peek) {
            push_tag(&mut s, "PopReceipt", &m.pop_receipt);
            push_tag(&mut s, "TimeNextVisible", &time(m.visible_ms));
        }
        if !matches!(fields, Fields::Put) {
            push_tag(&mut s, "DequeueCount", &m.dequeue_count.to_string());
            push_tag(&mut s, "MessageText", &m.text);
        }
        s.push_str("</QueueMessage>");
    }
    s.push_str("</QueueMessagesList>");
    s
}

async fn put_message(
    ctx: &Ctx,
    q: String,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let visibility = int_param(ctx, "visibilitytimeout", 0..=SEVEN_DAYS, Some(0))?;
    let ttl = int_param(ctx, "messagettl", -1..=i64::MAX / 1000, Some(SEVEN_DAYS))?;
    if ttl == 0 || (ttl != -1 && ttl < visibility) {
        return Err(out_of_range("messagettl"));
    }
    let raw = body::read_small(body::take(incoming)?, MAX_MESSAGE * 2 + 1024).await?;
    let text = parse_message(&raw)?;
    let ttl = (ttl != -1).then_some(ttl);
    let m = ctx
        .state
        .store
        .put_message_async(ctx.account(), &q, &text, visibility, ttl)
        .await?;
    let mut r = xml(messages_xml(&[m], Fields::Put));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

async fn get_messages(ctx: &Ctx, q: String) -> Result<Response<Body>, ApiError> {
    let count = int_param(ctx, "numofmessages", 1..=32, Some(1))? as usize;
    let peek = ctx
        .query
        .get("peekonly")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let visibility = if peek {
        None
    } else {
        Some(int_param(
            ctx,
            "visibilitytimeout",
            1..=SEVEN_DAYS,
            Some(30),
        )?)
    };
    authorize(
        ctx,
        if peek {
            QueueOp::PeekMessages
        } else {
            QueueOp::GetMessages
        },
    )?;
    let (state, account) = (ctx.state.clone(), ctx.account().to_string());
    let msgs = if visibility.is_some() {
        state
            .store
            .get_messages_async(&account, &q, count, visibility)
            .await?
    } else {
        blocking(move || state.store.get_messages(&account, &q, count, visibility)).await?
    };
    Ok(xml(messages_xml(
        &msgs,
        if peek { Fields::Peek } else { Fields::Get },
    )))
}

async fn update_message(
    ctx: &Ctx,
    q: String,
    id: String,
    receipt: String,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let visibility = int_param(ctx, "visibilitytimeout", 0..=SEVEN_DAYS, None)?;
    let raw = body::read_small(body::take(incoming)?, MAX_MESSAGE * 2 + 1024).await?;
    let text = if raw.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        Some(parse_message(&raw)?)
    };
    let (new_receipt, visible) = ctx
        .state
        .store
        .update_message_async(
            ctx.account(),
            &q,
            &id,
            &receipt,
            visibility,
            text.as_deref(),
        )
        .await?;
    let mut r = status(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert("x-ms-popreceipt", hv(&new_receipt));
    h.insert("x-ms-time-next-visible", hv(&time(visible)));
    Ok(r)
}
