//! Lease Container and Lease Blob.

use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::headers::put_etag;
use super::{Ctx, blocking, hv};
use crate::api_error::ApiError;
use crate::conditions::Conditions;
use crate::lease::{LeaseAction, parse_action};

pub async fn lease(ctx: &Ctx, blob: bool) -> Result<Response<Body>, ApiError> {
    let action = parse_action(|n| ctx.header(n).map(str::to_string))?;
    let mut conds = Conditions::parse(&ctx.headers)?;
    conds.lease_id = None;
    let status = match action {
        LeaseAction::Acquire { .. } => StatusCode::CREATED,
        LeaseAction::Break { .. } => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let (state, t) = (ctx.state.clone(), ctx.target());
    let (etag, modified, outcome) = blocking(move || {
        if blob {
            let (p, o) =
                state
                    .store
                    .lease_blob(&t.account, &t.container, &t.blob, &conds, action)?;
            Ok((p.etag, p.last_modified_ms, o))
        } else {
            let (p, o) = state
                .store
                .lease_container(&t.account, &t.container, &conds, action)?;
            Ok((p.etag, p.last_modified_ms, o))
        }
    })
    .await?;
    let mut r = Response::new(body::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    put_etag(h, &etag, modified);
    if let Some(id) = &outcome.id {
        h.insert("x-ms-lease-id", hv(id));
    }
    if let Some(t) = outcome.time {
        h.insert("x-ms-lease-time", hv(&t.to_string()));
    }
    Ok(r)
}
