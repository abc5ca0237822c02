//! Preparing an instance on this host: its shared read-only approot (or
//! its own, after a reimage), its local storage directories, its endpoint
//! ports and what its runtime endpoint serves. Failures are words for the
//! instance's report.
//!
//! A reimage (a new [`InstanceSpec::reimage`] counter) deletes all the
//! instance's local storage and unpacks a fresh, verified approot into
//! `<instance>/approot/<digest>/<role>` that the instance uses from then on
//! (until a new package digest takes it back to the shared one). The counter
//! applied last is kept in `<instance>/reimage`, written after the wipe, so
//! a restarted agent neither wipes twice nor forgets a wipe it did not
//! finish.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use weft_package::{Package, PackageError, UnpackOptions};
use weft_runtime::protocol::{Endpoint, InstanceInfo, LocalResource};

use crate::agent::Shared;
use crate::driver::Credentials;
use crate::env::{Placement, protocol_name};
use crate::protocol::InstanceSpec;

/// The instance's approot: its own (`<instance>/approot/<digest>/<role>`)
/// when a reimage unpacked one for this package, else the role's shared
/// one, unpacked once per (package digest, role) into
/// `<state>/approots/<digest>/<role>`, read-only and shared by every
/// instance of that role and package. `reimaged`: unpack a fresh own one.
pub(crate) async fn approot(
    shared: &Shared,
    spec: &InstanceSpec,
    reimaged: bool,
) -> Result<PathBuf, String> {
    let own_base = shared
        .instance_dir(&spec.deployment_id, &spec.instance_id)
        .join("approot");
    let own = own_base.join(&spec.package.digest).join(&spec.role);
    if reimaged {
        remove_tree(&own_base).map_err(|e| {
            format!(
                "failed to remove the old approot {}: {e}",
                own_base.display()
            )
        })?;
        unpack(spec, &own).await?;
        tracing::info!(instance = %spec.instance_id, deployment = %spec.deployment_id, approot = %own.display(), "fresh approot unpacked for a reimage");
        return Ok(own);
    }
    if own.is_dir() {
        return Ok(own);
    }
    if own_base.exists() {
        // Unpacked for another package: this one runs from the shared one.
        remove_tree(&own_base).map_err(|e| {
            format!(
                "failed to remove the old approot {}: {e}",
                own_base.display()
            )
        })?;
    }
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
    unpack(spec, &target).await?;
    tracing::info!(role = %spec.role, digest = %spec.package.digest, approot = %target.display(), "approot ready");
    Ok(target)
}

/// Opens the spec's package, checks its digest and unpacks (verifying
/// every byte) the role into `target`, read-only.
async fn unpack(spec: &InstanceSpec, target: &Path) -> Result<(), String> {
    let package = spec.package.clone();
    let role = spec.role.clone();
    let dest = target.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
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
    .map_err(|e| format!("failed to unpack role {}: {e}", spec.role))?
}

/// Starts applying a new reimage counter: deletes all the instance's local
/// storage (whatever `cleanOnRoleRecycle` says). Returns whether the
/// instance is being reimaged: its approot must then be unpacked afresh,
/// and [`reimaged`] records the counter.
pub(crate) fn reimage(shared: &Shared, spec: &InstanceSpec) -> Result<bool, String> {
    let dir = shared.instance_dir(&spec.deployment_id, &spec.instance_id);
    let applied = fs::read_to_string(dir.join("reimage"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if applied == spec.reimage {
        return Ok(false);
    }
    let local = dir.join("local");
    remove_tree(&local).map_err(|e| {
        format!(
            "failed to delete the local storage at {} for a reimage: {e}",
            local.display()
        )
    })?;
    tracing::info!(instance = %spec.instance_id, deployment = %spec.deployment_id, from = applied, to = spec.reimage, "reimaging: local storage deleted");
    Ok(true)
}

/// Records that reimage `spec.reimage` is complete (storage deleted, fresh
/// approot unpacked).
pub(crate) fn reimaged(shared: &Shared, spec: &InstanceSpec) -> Result<(), String> {
    let dir = shared.instance_dir(&spec.deployment_id, &spec.instance_id);
    let file = dir.join("reimage");
    let tmp = dir.join("reimage.tmp");
    fs::create_dir_all(&dir)
        .and_then(|()| fs::write(&tmp, format!("{}\n", spec.reimage)))
        .and_then(|()| fs::rename(&tmp, &file))
        .map_err(|e| format!("failed to record the reimage in {}: {e}", file.display()))
}

/// Removes a directory tree, making read-only directories (an approot, or
/// what an instance locked) writable first. Absent is fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(path)? {
            remove_tree(&entry?.path())?;
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
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
