//! Request and response bodies: uploads stream to a temp file (hashed on
//! the way), downloads stream from data files; neither is held in memory.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::StatusCode;
use hyper::body::{Frame, Incoming};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api_error::ApiError;
use crate::store::{Extent, Store};

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

const CHUNK: usize = 1024 * 1024;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn body_error(e: hyper::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidInput",
        format!("One of the request inputs is not valid: the body could not be read ({e})."),
    )
}

/// Most bytes of an unwanted body read to keep a connection alive.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// Takes the request body for reading.
pub fn take(body: &mut Option<Incoming>) -> Result<Incoming, ApiError> {
    body.take()
        .ok_or_else(|| ApiError::internal("request body taken twice"))
}

/// Reads and discards a body the request no longer needs, up to a limit.
pub async fn drain(mut body: Incoming) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(d) = frame.into_data() {
            seen += d.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
}

/// Reads a small body (XML documents) of at most `max` bytes.
pub async fn read_small(mut body: Incoming, max: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(body_error)?.into_data() {
            if buf.len() + data.len() > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestBodyTooLarge",
                    "The request body is too large and exceeds the maximum permissible limit.",
                ));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// A received upload: a durable data file (none when empty), its size and MD5.
pub struct Received {
    pub file: Option<String>,
    /// The body itself when it was small enough to keep in memory (only
    /// when the caller allowed it); `file` is then `None`.
    pub inline: Option<Bytes>,
    pub size: u64,
    pub md5: [u8; 16],
}

/// Streams a body to a temp file, fsyncs it and moves it into the data
/// directory. Refuses bodies over `max` bytes and checks `Content-MD5`.
pub async fn receive(
    store: &std::sync::Arc<crate::server::ServiceState>,
    mut body: Incoming,
    max: u64,
    expect_md5: Option<&str>,
    inline_up_to: u64,
) -> Result<Received, ApiError> {
    let declared = hyper::body::Body::size_hint(&body).exact();
    if let Some(n) = declared.filter(|n| *n > 0 && *n <= inline_up_to) {
        let data = read_small(body, n as usize).await?;
        let md5: [u8; 16] = Md5::digest(&data).into();
        check_md5(expect_md5, &md5)?;
        return Ok(Received {
            file: None,
            inline: Some(data.clone()),
            size: data.len() as u64,
            md5,
        });
    }
    let tmp: PathBuf = store.store.temp_path();
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| ApiError::internal(format!("create {}: {e}", tmp.display())))?;
        let mut hasher = Md5::new();
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(body_error)?.into_data() {
                size += data.len() as u64;
                if size > max {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestBodyTooLarge",
                        "The request body is too large and exceeds the maximum permissible limit.",
                    ));
                }
                hasher.update(&data);
                file.write_all(&data)
                    .await
                    .map_err(|e| ApiError::internal(format!("write {}: {e}", tmp.display())))?;
            }
        }
        let md5: [u8; 16] = hasher.finalize().into();
        check_md5(expect_md5, &md5)?;
        if size == 0 {
            return Ok(Received {
                file: None,
                inline: None,
                size,
                md5,
            });
        }
        file.sync_all()
            .await
            .map_err(|e| ApiError::internal(format!("fsync {}: {e}", tmp.display())))?;
        drop(file);
        let state = store.clone();
        let tmp2 = tmp.clone();
        let id = super::blocking(move || {
            state
                .store
                .adopt_temp(&tmp2)
                .map_err(|e| ApiError::internal(format!("adopt {}: {e}", tmp2.display())))
        })
        .await?;
        Ok(Received {
            file: Some(id),
            inline: None,
            size,
            md5,
        })
    }
    .await;
    if result.as_ref().map_or(true, |r| r.file.is_none()) {
        store.store.discard_temp(&tmp);
    }
    result
}

fn check_md5(expect: Option<&str>, md5: &[u8; 16]) -> Result<(), ApiError> {
    if let Some(want) = expect {
        use base64::Engine as _;
        let want = base64::engine::general_purpose::STANDARD
            .decode(want.trim())
            .map_err(|_| ApiError::invalid_header("Content-MD5"))?;
        if want != md5 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Md5Mismatch",
                "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
            ));
        }
    }
    Ok(())
}

/// Deletes a received file that ended up unused (the commit failed).
pub fn discard(store: &Store, received: &Received) {
    if let Some(id) = &received.file {
        let _ = std::fs::remove_file(store.file_path(id));
    }
}

struct Reader {
    pending: VecDeque<Extent>,
    current: Option<(tokio::fs::File, u64)>,
}

/// A body streaming the given extents in order, a chunk at a time.
pub fn stream_extents(extents: Vec<Extent>) -> Body {
    let reader = Reader {
        pending: extents.into(),
        current: None,
    };
    let s = stream::unfold(reader, |mut r| async move {
        loop {
            if let Some((file, left)) = &mut r.current {
                if *left == 0 {
                    r.current = None;
                    continue;
                }
                let want = (*left).min(CHUNK as u64) as usize;
                let mut buf = BytesMut::zeroed(want);
                match file.read(&mut buf).await {
                    Ok(0) => {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "data file shorter than recorded",
                        );
                        r.current = None;
                        r.pending.clear();
                        return Some((Err(e), r));
                    }
                    Ok(n) => {
                        *left -= n as u64;
                        buf.truncate(n);
                        return Some((Ok(Frame::data(buf.freeze())), r));
                    }
                    Err(e) => {
                        r.current = None;
                        r.pending.clear();
                        return Some((Err(e), r));
                    }
                }
            }
            let ext = r.pending.pop_front()?;
            if let Some(bytes) = ext.inline {
                return Some((Ok(Frame::data(bytes)), r));
            }
            let opened = match ext.file {
                Some(f) => Ok(tokio::fs::File::from_std(f)),
                None => tokio::fs::File::open(&ext.path).await,
            };
            let mut file = match opened {
                Ok(f) => f,
                Err(e) => {
                    r.pending.clear();
                    return Some((Err(e), r));
                }
            };
            if let Err(e) = file.seek(SeekFrom::Start(ext.offset)).await {
                r.pending.clear();
                return Some((Err(e), r));
            }
            r.current = Some((file, ext.len));
        }
    });
    StreamBody::new(s).boxed_unsync()
}
