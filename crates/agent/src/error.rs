//! The agent's errors.

use std::path::PathBuf;

/// What failed in the agent, and with what.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state directory {} is in use by another agent", path.display())]
    StateDirInUse { path: PathBuf },

    #[error("failed to kill leftover processes of a previous agent run in {}: {reason}", state_dir.display())]
    Leftovers { state_dir: PathBuf, reason: String },

    #[error(
        "instance {instance_id} of deployment {deployment_id} appears twice in the desired set"
    )]
    DuplicateInstance {
        deployment_id: String,
        instance_id: String,
    },

    #[error("invalid spec for instance {instance_id}: {reason}")]
    InvalidSpec { instance_id: String, reason: String },

    #[error(
        "no instance {instance_id} of deployment {deployment_id} on this host and no logs of it"
    )]
    UnknownInstance {
        deployment_id: String,
        instance_id: String,
    },

    #[error(
        "failed to read the logs of instance {instance_id} of deployment {deployment_id}: {source}"
    )]
    Logs {
        deployment_id: String,
        instance_id: String,
        #[source]
        source: std::io::Error,
    },

    #[error("the agent is shut down")]
    ShutDown,
}

impl AgentError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        AgentError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
