//! Which operation a request is, and whether its caller may perform it:
//! account key holders always, SAS bearers within the token's scope and
//! permissions, anonymous callers only for reads of public containers.

use std::sync::Arc;

use hyper::Method;

use super::{Ctx, blocking};
use crate::account::Account;
use crate::api_error::{ApiError, SasLacks};
use crate::auth::{self, Principal};
use crate::request::{Address, Query};
use crate::server::ServiceState;
use crate::timefmt::now_millis;
use crate::xml::SignedIdentifier;

/// The blob service operations this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListContainers,
    AccountInfo,
    CreateContainer,
    DeleteContainer,
    GetContainerProperties,
    SetContainerMetadata,
    GetContainerAcl,
    SetContainerAcl,
    ListBlobs,
    PutBlob,
    /// Copy Blob, and Put Blob From URL (both name `x-ms-copy-source`).
    CopyBlob,
    AppendBlock,
    GetBlob,
    DeleteBlob,
    SetBlobProperties,
    SetBlobMetadata,
    GetBlobMetadata,
    PutBlock,
    PutBlockList,
    GetBlockList,
    LeaseContainer,
    LeaseBlob,
    SnapshotBlob,
}

/// Which level of the account an operation touches (account SAS `srt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Service,
    Container,
    Object,
}

impl Op {
    fn level(self) -> Level {
        use Op::*;
        match self {
            ListContainers | AccountInfo => Level::Service,
            CreateContainer
            | DeleteContainer
            | GetContainerProperties
            | SetContainerMetadata
            | GetContainerAcl
            | SetContainerAcl
            | ListBlobs => Level::Container,
            _ => Level::Object,
        }
    }

    /// SAS permission letters, any one of which allows the operation.
    fn permissions(self) -> &'static str {
        use Op::*;
        match self {
            AccountInfo => "racwdlxytfmeiop",
            ListContainers | ListBlobs => "l",
            CreateContainer => "cw",
            PutBlob | PutBlock | PutBlockList | CopyBlob | SnapshotBlob => "cw",
            AppendBlock => "aw",
            DeleteContainer | DeleteBlob => "d",
            GetContainerProperties | GetContainerAcl | GetBlob | GetBlobMetadata | GetBlockList => {
                "r"
            }
            SetContainerMetadata | SetContainerAcl | SetBlobProperties | SetBlobMetadata => "w",
            LeaseContainer | LeaseBlob => "wd",
        }
    }

    fn is_read(self) -> bool {
        use Op::*;
        matches!(
            self,
            ListContainers
                | AccountInfo
                | GetContainerProperties
                | GetContainerAcl
                | ListBlobs
                | GetBlob
                | GetBlobMetadata
                | GetBlockList
        )
    }
}

/// Maps method, address and `restype` / `comp` to an operation.
pub(super) fn classify(ctx: &Ctx) -> Result<Op, ApiError> {
    let restype = ctx.query.get("restype");
    let comp = ctx.query.get("comp");
    let m = &ctx.method;
    let read = *m == Method::GET || *m == Method::HEAD;
    let op = match (ctx.addr.container.is_some(), ctx.addr.blob.is_some()) {
        (false, _) => match (restype, comp) {
            (_, Some("list")) if *m == Method::GET => Op::ListContainers,
            (Some("account"), Some("properties")) if read => Op::AccountInfo,
            _ => return Err(ApiError::unsupported()),
        },
        (true, false) => {
            if restype != Some("container") {
                return Err(ApiError::unsupported());
            }
            match (m.clone(), comp) {
                (Method::PUT, None) => Op::CreateContainer,
                (Method::DELETE, None) => Op::DeleteContainer,
                (Method::GET | Method::HEAD, None | Some("metadata")) => Op::GetContainerProperties,
                (Method::PUT, Some("metadata")) => Op::SetContainerMetadata,
                (Method::GET | Method::HEAD, Some("acl")) => Op::GetContainerAcl,
                (Method::PUT, Some("acl")) => Op::SetContainerAcl,
                (Method::GET, Some("list")) => Op::ListBlobs,
                (Method::PUT, Some("lease")) => Op::LeaseContainer,
                _ => return Err(ApiError::unsupported()),
            }
        }
        (true, true) => match (m.clone(), comp) {
            (Method::PUT, None) if ctx.headers.contains_key("x-ms-copy-source") => Op::CopyBlob,
            (Method::PUT, None) => Op::PutBlob,
            (Method::PUT, Some("appendblock")) => Op::AppendBlock,
            (Method::GET | Method::HEAD, None) => Op::GetBlob,
            (Method::DELETE, None) => Op::DeleteBlob,
            (Method::PUT, Some("properties")) => Op::SetBlobProperties,
            (Method::PUT, Some("metadata")) => Op::SetBlobMetadata,
            (Method::GET | Method::HEAD, Some("metadata")) => Op::GetBlobMetadata,
            (Method::PUT, Some("block")) => Op::PutBlock,
            (Method::PUT, Some("blocklist")) => Op::PutBlockList,
            (Method::GET, Some("blocklist")) => Op::GetBlockList,
            (Method::PUT, Some("lease")) => Op::LeaseBlob,
            (Method::PUT, Some("snapshot")) => Op::SnapshotBlob,
            _ => return Err(ApiError::unsupported()),
        },
    };
    if let Some(snapshot) = ctx.query.get("snapshot")
        && (!matches!(op, Op::GetBlob | Op::GetBlobMetadata | Op::DeleteBlob)
            || crate::table::datetime::parse_datetime(snapshot).is_none())
    {
        // A snapshot is named by its time; anything else is malformed
        // (a well-formed time no snapshot has is 404 BlobNotFound).
        return Err(ApiError::invalid_query("snapshot"));
    }
    Ok(op)
}

/// A SAS allows an operation when its scope covers the resource and one of
/// the operation's permission letters was granted.
pub(crate) fn authorize_sas(
    ctx: &Ctx,
    grant: &auth::sas::SasGrant,
    op: Op,
) -> Result<(), ApiError> {
    use auth::sas::SasScope;
    let in_scope = match &grant.scope {
        SasScope::Account {
            services,
            resource_types,
        } => {
            if !services.contains('b') {
                return Err(ApiError::sas_mismatch(SasLacks::Service));
            }
            let needed = match op.level() {
                Level::Service => 's',
                Level::Container => 'c',
                Level::Object => 'o',
            };
            resource_types.contains(needed)
        }
        SasScope::Container { container } => {
            container == ctx.container() && (op.level() == Level::Object || op == Op::ListBlobs)
        }
        SasScope::Blob { container, blob } => {
            container == ctx.container() && ctx.addr.blob.as_deref() == Some(blob.as_str())
        }
        // A queue token never reaches the blob service's operations.
        SasScope::Queue { .. } => false,
    };
    if !in_scope {
        return Err(ApiError::sas_mismatch(SasLacks::ResourceType));
    }
    if !op
        .permissions()
        .chars()
        .any(|p| grant.permissions.contains(p))
    {
        return Err(ApiError::sas_mismatch(SasLacks::Permission));
    }
    Ok(())
}

/// Verifies a SAS token in the query against the account (and, for a
/// service SAS naming a stored access policy, the container's ACL).
pub(super) async fn sas_principal(
    state: &Arc<ServiceState>,
    addr: &Address,
    query: &Query,
) -> Result<Principal, ApiError> {
    service_sas_principal(
        state,
        addr,
        query,
        "A service SAS must name a container or blob.",
        |st, acct, c| st.store.get_container(acct, c).ok().map(|p| p.acl),
        |account, container, policy, now| {
            auth::sas::verify_service(account, container, addr.blob.as_deref(), query, policy, now)
        },
    )
    .await
}

/// A SAS token in the query of a blob or queue request: an account SAS,
/// or a service SAS for the container or queue the path names (not
/// named: `unnamed`), verified by `verify` with the stored access policy
/// the token's `si` names among those `acl` reads (blocking) for it.
pub(crate) async fn service_sas_principal(
    state: &Arc<ServiceState>,
    addr: &Address,
    query: &Query,
    unnamed: &'static str,
    acl: impl FnOnce(&ServiceState, &str, &str) -> Option<Vec<SignedIdentifier>> + Send + 'static,
    verify: impl FnOnce(
        &Account,
        &str,
        Option<&SignedIdentifier>,
        i64,
    ) -> Result<auth::sas::SasGrant, ApiError>,
) -> Result<Principal, ApiError> {
    let account = state
        .accounts
        .get(&addr.account)
        .ok_or_else(|| {
            ApiError::auth_failed(format!("The account {} does not exist.", addr.account))
        })?
        .clone();
    let now = now_millis();
    if query.get("ss").is_some() {
        return auth::sas::verify_account(&account, query, now).map(Principal::Sas);
    }
    let resource = addr
        .container
        .clone()
        .ok_or_else(|| ApiError::auth_failed(unnamed))?;
    let policy = match query.get("si") {
        None => None,
        Some(si) => {
            let (st, acct, r, si) = (
                state.clone(),
                addr.account.clone(),
                resource.clone(),
                si.to_string(),
            );
            blocking(move || {
                Ok(acl(&st, &acct, &r).and_then(|acl| acl.into_iter().find(|i| i.id == si)))
            })
            .await?
        }
    };
    verify(&account, &resource, policy.as_ref(), now).map(Principal::Sas)
}

/// Anonymous requests may only read from public containers: blobs of a
/// `blob` or `container` container, listings of a `container` container.
pub(super) async fn authorize_anonymous(ctx: &Ctx, op: Op) -> Result<(), ApiError> {
    let Some(container) = ctx.addr.container.clone() else {
        return Err(ApiError::no_auth());
    };
    if !op.is_read() {
        return Err(ApiError::no_auth());
    }
    let state = ctx.state.clone();
    let account = ctx.account().to_string();
    let props = blocking(move || state.store.get_container(&account, &container))
        .await
        .map_err(|_| ApiError::resource_not_found())?;
    let allowed = matches!(
        (props.public_access.as_deref(), op),
        (
            Some("container"),
            Op::GetBlob
                | Op::GetBlobMetadata
                | Op::GetBlockList
                | Op::ListBlobs
                | Op::GetContainerProperties
        ) | (
            Some("blob"),
            Op::GetBlob | Op::GetBlobMetadata | Op::GetBlockList
        )
    );
    if allowed {
        Ok(())
    } else {
        Err(ApiError::resource_not_found())
    }
}
