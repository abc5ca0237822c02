//! How the agent names an instance: Azure names role instances per
//! deployment (production and staging both have `Web_IN_0`), so the key is
//! the pair.

use std::fmt;

/// `(deployment_id, instance_id)`: what instance directories, cgroups, log
/// books, ports and reports are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct InstanceKey {
    pub(crate) deployment_id: String,
    pub(crate) instance_id: String,
}

impl InstanceKey {
    pub(crate) fn new(deployment_id: &str, instance_id: &str) -> InstanceKey {
        InstanceKey {
            deployment_id: deployment_id.to_owned(),
            instance_id: instance_id.to_owned(),
        }
    }

    /// The name of the instance's cgroup: `<deployment>+<instance>` (`+` is
    /// in neither id's alphabet, so two keys never share a name).
    pub(crate) fn cgroup_name(&self) -> String {
        format!("{}+{}", self.deployment_id, self.instance_id)
    }
}

/// `<deployment>/<instance>`, for logs.
impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.deployment_id, self.instance_id)
    }
}
