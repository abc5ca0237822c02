//! Which queue operation a request is, and whether its caller may perform
//! it: account key holders always; account SAS bearers when the token
//! covers the queue service, the operation's level and one of its
//! permission letters; queue service SAS bearers (`raup`) for their own
//! queue's metadata and messages only; anonymous callers never.

use std::sync::Arc;

use crate::api_error::{ApiError, SasLacks};
use crate::auth::sas::{SasGrant, SasScope};
use crate::auth::{self, Principal};
use crate::blob::Ctx;
use crate::request::{Address, Query};
use crate::server::ServiceState;

/// The queue service operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOp {
    ListQueues,
    CreateQueue,
    DeleteQueue,
    GetMetadata,
    SetMetadata,
    GetAcl,
    SetAcl,
    PutMessage,
    GetMessages,
    PeekMessages,
    ClearMessages,
    DeleteMessage,
    UpdateMessage,
}

impl QueueOp {
    /// The account SAS resource type (`srt`) the operation needs.
    fn level(self) -> char {
        use QueueOp::*;
        match self {
            ListQueues => 's',
            CreateQueue | DeleteQueue | GetMetadata | SetMetadata | GetAcl | SetAcl => 'c',
            _ => 'o',
        }
    }

    /// Account SAS permission letters, any one of which allows it.
    fn account_permissions(self) -> &'static str {
        use QueueOp::*;
        match self {
            ListQueues => "l",
            CreateQueue => "cw",
            DeleteQueue | ClearMessages => "d",
            GetMetadata | PeekMessages => "r",
            SetMetadata => "w",
            // Stored access policies are managed with the account key only.
            GetAcl | SetAcl => "",
            PutMessage => "a",
            GetMessages => "p",
            DeleteMessage => "pd",
            UpdateMessage => "u",
        }
    }

    /// Queue service SAS permission letters (`raup`), any one of which
    /// allows it; empty when no service SAS may.
    fn service_permissions(self) -> &'static str {
        use QueueOp::*;
        match self {
            GetMetadata | PeekMessages => "r",
            PutMessage => "a",
            UpdateMessage => "u",
            GetMessages | DeleteMessage => "p",
            _ => "",
        }
    }
}

/// Whether the caller may perform `op` on the queue the request names.
pub fn authorize(ctx: &Ctx, op: QueueOp) -> Result<(), ApiError> {
    match &ctx.principal {
        Principal::Account(_) => Ok(()),
        Principal::Anonymous => Err(ApiError::no_auth()),
        Principal::Sas(grant) => authorize_sas(grant, ctx.addr.container.as_deref(), op),
    }
}

fn authorize_sas(grant: &SasGrant, queue: Option<&str>, op: QueueOp) -> Result<(), ApiError> {
    let letters = match &grant.scope {
        SasScope::Account {
            services,
            resource_types,
        } => {
            if !services.contains('q') {
                return Err(ApiError::sas_mismatch(SasLacks::Service));
            }
            if !resource_types.contains(op.level()) {
                return Err(ApiError::sas_mismatch(SasLacks::ResourceType));
            }
            op.account_permissions()
        }
        SasScope::Queue { queue: signed } => {
            if queue != Some(signed.as_str()) {
                return Err(ApiError::sas_mismatch(SasLacks::ResourceType));
            }
            op.service_permissions()
        }
        SasScope::Container { .. } | SasScope::Blob { .. } => {
            return Err(ApiError::sas_mismatch(SasLacks::Service));
        }
    };
    if letters.chars().any(|p| grant.permissions.contains(p)) {
        Ok(())
    } else {
        Err(ApiError::sas_mismatch(SasLacks::Permission))
    }
}

/// Verifies a SAS token in a queue request's query: an account SAS, or a
/// service SAS for the queue the path names (with the queue's stored
/// access policy when the token names one).
pub async fn sas_principal(
    state: &Arc<ServiceState>,
    addr: &Address,
    query: &Query,
) -> Result<Principal, ApiError> {
    crate::blob::authorize::service_sas_principal(
        state,
        addr,
        query,
        "A queue service SAS must name a queue.",
        |st, acct, q| st.store.queue_acl(acct, q).ok(),
        |account, queue, policy, now| auth::queue_sas::verify(account, queue, query, policy, now),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token, the queue the request names, the operation, the outcome.
    type Case = (
        SasGrant,
        Option<&'static str>,
        QueueOp,
        Result<(), &'static str>,
    );

    fn grant(scope: SasScope, permissions: &str) -> SasGrant {
        SasGrant {
            scope,
            permissions: permissions.into(),
        }
    }

    /// A queue token covers its own queue's messages within its letters,
    /// and never queue management; an account token needs `q`, the level
    /// and a letter.
    #[test]
    fn tokens_allow_what_their_scope_and_letters_cover() {
        let q = || SasScope::Queue {
            queue: "jobs".into(),
        };
        let cases: &[Case] = &[
            (grant(q(), "a"), Some("jobs"), QueueOp::PutMessage, Ok(())),
            (
                grant(q(), "a"),
                Some("jobs"),
                QueueOp::GetMessages,
                Err("AuthorizationPermissionMismatch"),
            ),
            (
                grant(q(), "p"),
                Some("jobs"),
                QueueOp::DeleteMessage,
                Ok(()),
            ),
            (grant(q(), "r"), Some("jobs"), QueueOp::PeekMessages, Ok(())),
            (
                grant(q(), "u"),
                Some("jobs"),
                QueueOp::UpdateMessage,
                Ok(()),
            ),
            (
                grant(q(), "raup"),
                Some("jobs"),
                QueueOp::ClearMessages,
                Err("AuthorizationPermissionMismatch"),
            ),
            (
                grant(q(), "raup"),
                Some("jobs"),
                QueueOp::SetAcl,
                Err("AuthorizationPermissionMismatch"),
            ),
            (
                grant(q(), "raup"),
                Some("other"),
                QueueOp::PutMessage,
                Err("AuthorizationResourceTypeMismatch"),
            ),
            (
                grant(
                    SasScope::Account {
                        services: "q".into(),
                        resource_types: "sco".into(),
                    },
                    "l",
                ),
                None,
                QueueOp::ListQueues,
                Ok(()),
            ),
            (
                grant(
                    SasScope::Account {
                        services: "b".into(),
                        resource_types: "sco".into(),
                    },
                    "l",
                ),
                None,
                QueueOp::ListQueues,
                Err("AuthorizationServiceMismatch"),
            ),
            (
                grant(
                    SasScope::Account {
                        services: "q".into(),
                        resource_types: "o".into(),
                    },
                    "c",
                ),
                Some("jobs"),
                QueueOp::CreateQueue,
                Err("AuthorizationResourceTypeMismatch"),
            ),
            (
                grant(
                    SasScope::Container {
                        container: "jobs".into(),
                    },
                    "racwdl",
                ),
                Some("jobs"),
                QueueOp::PeekMessages,
                Err("AuthorizationServiceMismatch"),
            ),
        ];
        for (g, queue, op, want) in cases {
            let got = authorize_sas(g, *queue, *op).map_err(|e| e.code);
            assert_eq!(got, *want, "{op:?} with {g:?} on {queue:?}");
        }
    }
}
