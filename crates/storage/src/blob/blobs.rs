//! Blob operations: Put Blob, Get Blob (ranges), Get Blob Properties,
//! Set Blob Properties, Get/Set Blob Metadata, Delete Blob.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};

use super::body::{self, Body};
use super::headers::{
    content_for_put, content_from_blob_headers, metadata, put_blob_properties, put_etag,
    put_metadata,
};
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::store::{AppendConditions, BlobProps, BlobType, CopyInfo, DeleteSnapshots, NewBlob};
use crate::timefmt::now_millis;

/// Largest single Put Blob body (Azure's limit for version 2019-12-12+).
pub const MAX_PUT_BLOB: u64 = 5000 * 1024 * 1024;

fn status(s: StatusCode) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = s;
    r
}

pub async fn put(ctx: &Ctx, incoming: &mut Option<Incoming>) -> Result<Response<Body>, ApiError> {
    let blob_type = match ctx.header("x-ms-blob-type") {
        Some("BlockBlob") => BlobType::BlockBlob,
        Some("AppendBlob") => BlobType::AppendBlob,
        None => return Err(ApiError::missing_header("x-ms-blob-type")),
        Some("PageBlob") => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "Page blobs are not implemented by this service yet.",
            ));
        }
        Some(_) => return Err(ApiError::invalid_header("x-ms-blob-type")),
    };
    if blob_type == BlobType::AppendBlob && ctx.header("content-length").is_some_and(|l| l != "0") {
        return Err(ApiError::invalid_header("Content-Length"));
    }
    ctx.require_content_length()?;
    let meta = metadata(&ctx.headers)?;
    let conds = Conditions::parse(&ctx.headers)?;
    let mut content = content_for_put(&ctx.headers);
    // Fail fast before reading the body when the container is missing.
    crate::blob::quick_read(|| {
        ctx.state
            .store
            .get_container(ctx.account(), ctx.container())
    })?;
    let received = body::receive(
        &ctx.state,
        body::take(incoming)?,
        MAX_PUT_BLOB,
        ctx.header("content-md5"),
        crate::store::INLINE_MAX,
    )
    .await?;
    let md5 = STANDARD.encode(received.md5);
    if content.content_md5.is_none() {
        content.content_md5 = Some(md5.clone());
    }
    if blob_type == BlobType::AppendBlob {
        content.content_md5 = ctx.header("x-ms-blob-content-md5").map(str::to_string);
    }
    let new = NewBlob {
        inline: None,
        blob_type,
        content,
        metadata: meta,
    };
    let mut new = new;
    let data = match &received.inline {
        Some(bytes) => {
            new.inline = Some(bytes.clone());
            Some((
                format!(
                    "{}{}",
                    crate::store::INLINE_PREFIX,
                    crate::ids::unique().simple()
                ),
                received.size,
            ))
        }
        None => received.file.clone().map(|f| (f, received.size)),
    };
    let result = ctx
        .state
        .store
        .put_blob_async(
            ctx.account(),
            ctx.container(),
            ctx.blob(),
            &conds,
            new,
            data,
        )
        .await;
    let props = result.inspect_err(|_| body::discard(&ctx.state.store, &received))?;
    let mut r = status(StatusCode::CREATED);
    let h = r.headers_mut();
    put_etag(h, &props.etag, props.last_modified_ms);
    h.insert("content-md5", hv(&md5));
    h.insert("x-ms-request-server-encrypted", hv("true"));
    Ok(r)
}

pub async fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let head = ctx.method == Method::HEAD;
    let range = if head {
        None
    } else {
        crate::range::from_headers(&ctx.headers)?
    };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let snapshot = ctx.query.get("snapshot").map(str::to_string);
    let read = if let Some(snap) = snapshot {
        let head_only = head;
        blocking(move || {
            let mut r = state.store.open_snapshot(
                &t.account,
                &t.container,
                &t.blob,
                &snap,
                &conds,
                range,
            )?;
            if head_only {
                r.extents.clear();
            }
            Ok(r)
        })
        .await?
    } else if head {
        let p = blocking(move || {
            let p = state.store.get_blob(&t.account, &t.container, &t.blob)?;
            conds.check(Some(p.current()), true)?;
            crate::store::read_lease_ok(&conds, &p)?;
            Ok(p)
        })
        .await?;
        crate::store::ReadBlob {
            props: p,
            range: None,
            extents: Vec::new(),
        }
    } else {
        // A point read on a reader connection: see `blob::quick_read`.
        crate::blob::quick_read(|| {
            state
                .store
                .open_blob(&t.account, &t.container, &t.blob, &conds, range)
        })?
    };
    let size = read.props.size;
    let (len, body) = match read.range {
        Some((_, len)) => (len, body::stream_extents(read.extents)),
        None if head => (size, body::empty()),
        None => (size, body::stream_extents(read.extents)),
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    put_blob_properties(h, &read.props);
    if matches!(ctx.principal, crate::auth::Principal::Sas(_)) {
        // A service SAS may override response headers (rscc, rscd, ...).
        for (param, header) in [
            ("rscc", "cache-control"),
            ("rscd", "content-disposition"),
            ("rsce", "content-encoding"),
            ("rscl", "content-language"),
            ("rsct", "content-type"),
        ] {
            if let Some(v) = ctx.query.get(param).filter(|v| !v.is_empty()) {
                h.insert(header, hv(v));
            }
        }
    }
    h.insert(hyper::header::CONTENT_LENGTH, hv(&len.to_string()));
    if let Some(c) = &read.props.copy {
        h.insert("x-ms-copy-id", hv(&c.id));
        h.insert("x-ms-copy-source", hv(&c.source));
        h.insert("x-ms-copy-status", hv(&c.status));
        h.insert(
            "x-ms-copy-progress",
            hv(&format!("{}/{}", c.bytes, c.bytes)),
        );
        h.insert(
            "x-ms-copy-completion-time",
            hv(&crate::timefmt::rfc1123(c.completed_ms)),
        );
    }
    match read.range {
        Some((start, len)) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            h.insert(
                hyper::header::CONTENT_RANGE,
                hv(&format!("bytes {start}-{}/{size}", start + len - 1)),
            );
            if let Some(md5) = &read.props.content.content_md5 {
                h.insert("x-ms-blob-content-md5", hv(md5));
            }
        }
        None => {
            if let Some(md5) = &read.props.content.content_md5 {
                h.insert("content-md5", hv(md5));
            }
            if head {
                h.insert("x-ms-access-tier", hv("Hot"));
                h.insert("x-ms-access-tier-inferred", hv("true"));
            }
        }
    }
    Ok(r)
}

pub async fn delete(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let (state, t) = (ctx.state.clone(), ctx.target());
    let snapshot = ctx.query.get("snapshot").map(str::to_string);
    let which = match ctx.header("x-ms-delete-snapshots") {
        None => None,
        Some("include") => Some(DeleteSnapshots::Include),
        Some("only") => Some(DeleteSnapshots::Only),
        Some(_) => return Err(ApiError::invalid_header("x-ms-delete-snapshots")),
    };
    if snapshot.is_some() && which.is_some() {
        return Err(ApiError::invalid_header("x-ms-delete-snapshots"));
    }
    blocking(move || match snapshot {
        Some(s) => state
            .store
            .delete_snapshot(&t.account, &t.container, &t.blob, &s),
        None => state
            .store
            .delete_blob(&t.account, &t.container, &t.blob, &conds, which),
    })
    .await?;
    let mut r = status(StatusCode::ACCEPTED);
    r.headers_mut()
        .insert("x-ms-delete-type-permanent", hv("true"));
    Ok(r)
}

/// Changes a blob's stored properties under the request's conditions and
/// answers 200 with the new ETag.
async fn update(
    ctx: &Ctx,
    conds: Conditions,
    change: impl FnOnce(&mut BlobProps) + Send + 'static,
) -> Result<Response<Body>, ApiError> {
    let (state, t) = (ctx.state.clone(), ctx.target());
    let p = blocking(move || {
        state
            .store
            .update_blob(&t.account, &t.container, &t.blob, &conds, change)
    })
    .await?;
    let mut r = status(StatusCode::OK);
    put_etag(r.headers_mut(), &p.etag, p.last_modified_ms);
    Ok(r)
}

pub async fn set_properties(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let content = content_from_blob_headers(&ctx.headers);
    update(ctx, conds, |p| p.content = content).await
}

pub async fn set_metadata(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let meta = metadata(&ctx.headers)?;
    let mut r = update(ctx, conds, |p| p.metadata = meta).await?;
    r.headers_mut()
        .insert("x-ms-request-server-encrypted", hv("true"));
    Ok(r)
}

pub async fn get_metadata(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let (state, t) = (ctx.state.clone(), ctx.target());
    let p = blocking(move || {
        let p = state.store.get_blob(&t.account, &t.container, &t.blob)?;
        conds.check(Some(p.current()), true)?;
        crate::store::read_lease_ok(&conds, &p)?;
        Ok(p)
    })
    .await?;
    let mut r = status(StatusCode::OK);
    let h = r.headers_mut();
    put_etag(h, &p.etag, p.last_modified_ms);
    put_metadata(h, &p.metadata);
    Ok(r)
}

/// Append Block: the body becomes a new block at the end of an append blob.
pub async fn append_block(
    ctx: &Ctx,
    incoming: &mut Option<Incoming>,
) -> Result<Response<Body>, ApiError> {
    ctx.require_content_length()?;
    let conds = Conditions::parse(&ctx.headers)?;
    let number = |name: &str| -> Result<Option<u64>, ApiError> {
        ctx.header(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| ApiError::invalid_header(name))
            })
            .transpose()
    };
    let append = AppendConditions {
        max_size: number("x-ms-blob-condition-maxsize")?,
        append_position: number("x-ms-blob-condition-appendpos")?,
    };
    {
        let (state, t) = (ctx.state.clone(), ctx.target());
        blocking(move || state.store.get_blob(&t.account, &t.container, &t.blob)).await?;
    }
    let received = body::receive(
        &ctx.state,
        body::take(incoming)?,
        MAX_APPEND_BLOCK,
        ctx.header("content-md5"),
        0,
    )
    .await?;
    let Some(file) = received.file.clone() else {
        return Err(ApiError::invalid_header("Content-Length"));
    };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let size = received.size;
    let result = blocking(move || {
        state.store.append_block(
            &t.account,
            &t.container,
            &t.blob,
            &conds,
            append,
            (&file, size),
        )
    })
    .await;
    let (props, offset, count) =
        result.inspect_err(|_| body::discard(&ctx.state.store, &received))?;
    let mut r = status(StatusCode::CREATED);
    let h = r.headers_mut();
    put_etag(h, &props.etag, props.last_modified_ms);
    h.insert("content-md5", hv(&STANDARD.encode(received.md5)));
    h.insert("x-ms-blob-append-offset", hv(&offset.to_string()));
    h.insert("x-ms-blob-committed-block-count", hv(&count.to_string()));
    h.insert("x-ms-request-server-encrypted", hv("true"));
    Ok(r)
}

/// Largest Append Block body (Azure's limit for version 2022-11-02+).
pub const MAX_APPEND_BLOCK: u64 = 100 * 1024 * 1024;

/// Copy Blob (and Put Blob From URL) from a blob in this service: the
/// source is `x-ms-copy-source`, a URL on this server; a source in another
/// account must carry a SAS that grants read. The copy completes before
/// the response.
pub async fn copy(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let source_url = ctx
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let from_url = ctx.header("x-ms-blob-type").is_some();
    let src = crate::request::CopySource::parse(&source_url)?;
    let (src_container, src_blob) = (src.container.clone(), src.blob.clone());
    if src.account != ctx.account() {
        let query = &src.query;
        let account = ctx.state.accounts.get(&src.account).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "CannotVerifyCopySource",
                "The specified resource does not exist.",
            )
        })?;
        let now = now_millis();
        let grant = if query.get("ss").is_some() {
            crate::auth::sas::verify_account(account, query, now)
        } else {
            crate::auth::sas::verify_service(
                account,
                &src_container,
                Some(&src_blob),
                query,
                None,
                now,
            )
        }
        .map_err(|_| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "CannotVerifyCopySource",
                "Server failed to authenticate the request.",
            )
        })?;
        if !grant.permissions.contains('r') {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "CannotVerifyCopySource",
                "This request is not authorized to perform this operation using this permission.",
            ));
        }
    }
    let conds = Conditions::parse(&ctx.headers)?;
    let meta = metadata(&ctx.headers)?;
    let meta = if meta.is_empty() && !from_url {
        None
    } else {
        Some(meta)
    };
    let copy_id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let (state, t) = (ctx.state.clone(), ctx.target());
    let (id2, url2) = (copy_id.clone(), source_url.clone());
    let props = blocking(move || {
        let size = state
            .store
            .get_blob(&src.account, &src_container, &src_blob)
            .map(|b| b.size)
            .unwrap_or(0);
        let copy = (!from_url).then(|| CopyInfo {
            id: id2,
            source: url2,
            status: "success".into(),
            bytes: size,
            completed_ms: now,
        });
        state.store.copy_blob(
            &t.account,
            (&src.account, &src_container, &src_blob),
            &t.container,
            &t.blob,
            &conds,
            meta,
            copy,
        )
    })
    .await?;
    let mut r = status(if from_url {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    });
    let h = r.headers_mut();
    put_etag(h, &props.etag, props.last_modified_ms);
    if !from_url {
        h.insert("x-ms-copy-id", hv(&copy_id));
        h.insert("x-ms-copy-status", hv("success"));
    }
    Ok(r)
}

/// Snapshot Blob: a read-only, timestamped copy sharing the blob's data.
pub async fn snapshot(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let conds = Conditions::parse(&ctx.headers)?;
    let meta = metadata(&ctx.headers)?;
    let meta = if meta.is_empty() { None } else { Some(meta) };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let (snapshot, base) = blocking(move || {
        state
            .store
            .snapshot_blob(&t.account, &t.container, &t.blob, &conds, meta)
    })
    .await?;
    let mut r = status(StatusCode::CREATED);
    let h = r.headers_mut();
    put_etag(h, &base.etag, base.last_modified_ms);
    h.insert("x-ms-snapshot", hv(&snapshot));
    Ok(r)
}
