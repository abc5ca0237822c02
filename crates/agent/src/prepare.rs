//! Preparing an instance on this host: its shared read-only approot, its
//! local storage directories, its endpoint ports and what its runtime
//! endpoint serves. Failures are words for the instance's report.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;

use weft_package::{Package, PackageError, UnpackOptions};
use weft_runtime::protocol::{Endpoint, InstanceInfo, LocalResource};

use crate::agent::Shared;
use crate::driver::Credentials;
use crate::env::{Placement, protocol_name};
use crate::protocol::InstanceSpec;

/// Unpacks the role's approot once per (package digest, role) into
/// `<state>/approots/<digest>/<role>`, read-only and shared by every
/// instance of that role and package.
pub(crate) async fn approot(shared: &Shared, spec: &InstanceSpec) -> Result<PathBuf, String> {
    let target = shared
        .state_dir
        .join("approots")
        .join(&spec.package.digest)
        .join(&spec.role);
    if target.is_dir() {
        return Ok(target);
    }
    let lock = shared.unpack_lock(&target);
    let _unpacking = lock.lock().await;
    if target.is_dir() {
        return Ok(target);
    }
    let package = spec.package.clone();
    let role = spec.role.clone();
    let dest = target.clone();
    let unpacked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut opened = Package::open(&package.path)
            .map_err(|e| format!("failed to open package {}: {e}", package.path.display()))?;
        if opened.digest() != package.digest {
            return Err(format!(
                "package {} has digest {}, not the {} the deployment names",
                package.path.display(),
                opened.digest(),
                package.digest
            ));
        }
        match opened.unpack_role(&role, &dest, UnpackOptions { read_only: true }) {
            Ok(_) => Ok(()),
            Err(PackageError::TargetExists { .. }) => Ok(()),
            Err(PackageError::Unpack { error, .. })
                if matches!(*error, PackageError::TargetExists { .. }) =>
            {
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(|e| format!("failed to unpack role {}: {e}", spec.role))?;
    unpacked?;
    tracing::info!(role = %spec.role, digest = %spec.package.digest, approot = %target.display(), "approot ready");
    Ok(target)
}

/// The user limited processes run as: [`crate::AgentConfig::limited_user`]
/// when the agent runs as root.
pub(crate) fn limited_user(shared: &Shared) -> Result<Option<Credentials>, String> {
    let Some(name) = &shared.config.limited_user else {
        return Ok(None);
    };
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(Some(Credentials {
            uid: user.uid,
            gid: user.gid,
        })),
        Ok(None) => Err(format!(
            "the limited user {name} does not exist on this host"
        )),
        Err(e) => Err(format!("failed to look up the limited user {name}: {e}")),
    }
}

/// Creates (or, with `cleanOnRoleRecycle`, empties) every local storage
/// directory: `<state>/instances/<id>/local/<name>`, owned by the
/// instance's user when it is limited.
pub(crate) fn local_resources(
    shared: &Shared,
    spec: &InstanceSpec,
    limited: Option<Credentials>,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let base = shared
        .instance_dir(&spec.deployment_id, &spec.instance_id)
        .join("local");
    let mut dirs = BTreeMap::new();
    for resource in &spec.local_resources {
        let dir = base.join(&resource.name);
        if resource.clean_on_role_recycle && dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| {
                format!(
                    "failed to clean local storage {} at {}: {e}",
                    resource.name,
                    dir.display()
                )
            })?;
        }
        fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "failed to create local storage {} at {}: {e}",
                resource.name,
                dir.display()
            )
        })?;
        if let Some(user) = limited {
            nix::unistd::chown(&dir, Some(user.uid), Some(user.gid)).map_err(|e| {
                format!(
                    "failed to give local storage {} at {} to the instance's user: {e}",
                    resource.name,
                    dir.display()
                )
            })?;
        }
        dirs.insert(resource.name.clone(), dir);
    }
    Ok(dirs)
}

/// Assigns every endpoint a port (see [`crate::ports`]).
pub(crate) fn endpoints(
    shared: &Shared,
    spec: &InstanceSpec,
) -> Result<BTreeMap<String, (SocketAddr, crate::protocol::EndpointProtocol)>, String> {
    let host = shared.config.host_address;
    let holder = format!("{}/{}", spec.deployment_id, spec.instance_id);
    let mut out = BTreeMap::new();
    for ep in &spec.endpoints {
        let port = shared
            .ports
            .assign(host, &holder, &ep.name, ep.protocol, ep.local_port)
            .map_err(|e| format!("failed to find a port for endpoint {}: {e}", ep.name))?;
        if let Some(wanted) = ep.local_port
            && wanted != port
        {
            tracing::info!(instance = %spec.instance_id, endpoint = %ep.name, wanted, port, "endpoint port remapped");
        }
        out.insert(ep.name.clone(), (SocketAddr::new(host, port), ep.protocol));
    }
    Ok(out)
}

/// What `GET /v1/instance` answers for this instance.
pub(crate) fn instance_info(spec: &InstanceSpec, placement: &Placement) -> InstanceInfo {
    InstanceInfo {
        deployment_id: spec.deployment_id.clone(),
        role: spec.role.clone(),
        instance_id: spec.instance_id.clone(),
        update_domain: spec.update_domain,
        fault_domain: spec.fault_domain,
        settings: spec.settings.clone(),
        local_resources: spec
            .local_resources
            .iter()
            .filter_map(|r| {
                let path = placement.local_resources.get(&r.name)?.clone();
                Some((
                    r.name.clone(),
                    LocalResource {
                        path,
                        size_mb: r.size_mb,
                    },
                ))
            })
            .collect(),
        endpoints: placement
            .endpoints
            .iter()
            .map(|(name, (address, protocol))| {
                (
                    name.clone(),
                    Endpoint {
                        protocol: protocol_name(*protocol).to_owned(),
                        address: *address,
                    },
                )
            })
            .collect(),
    }
}
