//! The environment an instance's processes start with: a clean one (only
//! `PATH`, `HOME` and `LANG` of the agent's own), the `WEFT_*` variables,
//! then the role's `Runtime/Environment` in csdef order with
//! `RoleInstanceValue` xpaths resolved for this instance.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use weft_model::RoleInstanceXPath;
use weft_runtime::protocol::RUNTIME_ENV;

use crate::protocol::{EndpointProtocol, EnvValue, EnvVar, InstanceSpec};

/// Variables kept from the agent's own environment.
const KEPT: [&str; 3] = ["PATH", "HOME", "LANG"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What an instance resolved to on this host.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) runtime_address: String,
    /// name → directory
    pub(crate) local_resources: BTreeMap<String, PathBuf>,
    /// name → (address, protocol)
    pub(crate) endpoints: BTreeMap<String, (SocketAddr, EndpointProtocol)>,
}

/// The role's environment (`Runtime/Environment`, for the entry point), or
/// why an xpath cannot be resolved.
pub(crate) fn instance_env(
    spec: &InstanceSpec,
    placement: &Placement,
) -> Result<Vec<(String, String)>, String> {
    let mut env = base_env(spec, placement);
    extend(&mut env, &spec.environment, spec, placement)?;
    Ok(env)
}

/// What every process of the instance gets: the kept variables and the
/// `WEFT_*` ones. Startup tasks get this plus their own `Task/Environment`,
/// not the role's `Runtime/Environment` (as on Azure).
pub(crate) fn base_env(spec: &InstanceSpec, placement: &Placement) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for name in KEPT {
        match std::env::var(name) {
            Ok(value) => env.push((name.to_owned(), value)),
            Err(_) if name == "PATH" => env.push((name.to_owned(), DEFAULT_PATH.to_owned())),
            Err(_) => {}
        }
    }
    env.push((RUNTIME_ENV.to_owned(), placement.runtime_address.clone()));
    env.push(("WEFT_INSTANCE_ID".to_owned(), spec.instance_id.clone()));
    env.push(("WEFT_ROLE".to_owned(), spec.role.clone()));
    env.push(("WEFT_DEPLOYMENT_ID".to_owned(), spec.deployment_id.clone()));
    for (name, (addr, _)) in &placement.endpoints {
        env.push((
            format!("WEFT_ENDPOINT_{}", env_name(name)),
            addr.to_string(),
        ));
    }
    env
}

/// Adds `vars` (resolved) to `env`, a later value replacing an earlier one.
pub(crate) fn extend(
    env: &mut Vec<(String, String)>,
    vars: &[EnvVar],
    spec: &InstanceSpec,
    placement: &Placement,
) -> Result<(), String> {
    for var in vars {
        let value = match &var.value {
            EnvValue::Literal(v) => v.clone(),
            EnvValue::XPath(xpath) => resolve(xpath, spec, placement)
                .map_err(|why| format!("environment variable {}: {why}", var.name))?,
        };
        env.retain(|(n, _)| *n != var.name);
        env.push((var.name.clone(), value));
    }
    Ok(())
}

/// One `RoleInstanceValue xpath`'s value for this instance.
pub(crate) fn resolve(
    xpath: &str,
    spec: &InstanceSpec,
    placement: &Placement,
) -> Result<String, String> {
    let parsed = RoleInstanceXPath::parse(xpath)
        .ok_or_else(|| format!("xpath `{xpath}` is not one weft can resolve"))?;
    let endpoint = |name: &str| {
        placement.endpoints.get(name).ok_or_else(|| {
            format!("xpath `{xpath}` names endpoint {name}, which the role does not have")
        })
    };
    let resource = |name: &str| {
        spec.local_resources
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                format!("xpath `{xpath}` names local resource {name}, which the role does not have")
            })
    };
    Ok(match parsed {
        RoleInstanceXPath::Emulated => "false".to_owned(),
        RoleInstanceXPath::DeploymentId => spec.deployment_id.clone(),
        RoleInstanceXPath::InstanceId => spec.instance_id.clone(),
        RoleInstanceXPath::RoleName => spec.role.clone(),
        RoleInstanceXPath::UpdateDomain => spec.update_domain.to_string(),
        RoleInstanceXPath::FaultDomain => spec.fault_domain.to_string(),
        RoleInstanceXPath::ConfigurationSetting(name) => {
            spec.settings.get(&name).cloned().ok_or_else(|| {
                format!(
                    "xpath `{xpath}` names setting {name}, which the configuration does not have"
                )
            })?
        }
        RoleInstanceXPath::LocalResourcePath(name) => {
            resource(&name)?;
            placement
                .local_resources
                .get(&name)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        }
        RoleInstanceXPath::LocalResourceSize(name) => resource(&name)?.size_mb.to_string(),
        RoleInstanceXPath::EndpointAddress(name) => endpoint(&name)?.0.ip().to_string(),
        RoleInstanceXPath::EndpointPort(name) => endpoint(&name)?.0.port().to_string(),
        RoleInstanceXPath::EndpointProtocol(name) => protocol_name(endpoint(&name)?.1).to_owned(),
    })
}

/// `HttpIn` → `HTTPIN`, `my-ep.1` → `MY_EP_1`.
pub(crate) fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn protocol_name(protocol: EndpointProtocol) -> &'static str {
    match protocol {
        EndpointProtocol::Tcp => "tcp",
        EndpointProtocol::Http => "http",
        EndpointProtocol::Https => "https",
        EndpointProtocol::Udp => "udp",
        EndpointProtocol::Any => "any",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use super::{Placement, env_name, resolve};
    use crate::protocol::{
        EndpointProtocol, InstanceSpec, LocalResourceSpec, PackageRef, ResourceLimits,
    };

    fn spec() -> InstanceSpec {
        InstanceSpec {
            deployment_id: "d".repeat(32),
            role: "Web".into(),
            instance_id: "Web_IN_2".into(),
            update_domain: 2,
            fault_domain: 0,
            incarnation: 1,
            reimage: 0,
            stopped: false,
            package: PackageRef {
                path: PathBuf::from("/p.cspkg"),
                digest: "ab".into(),
            },
            startup: Vec::new(),
            entry_point: None,
            set_ready_on_process_start: true,
            environment: Vec::new(),
            settings: BTreeMap::from([("Greeting".to_owned(), "hi".to_owned())]),
            local_resources: vec![LocalResourceSpec {
                name: "Temp".into(),
                size_mb: 64,
                clean_on_role_recycle: true,
            }],
            endpoints: Vec::new(),
            elevated: false,
            limits: ResourceLimits::default(),
        }
    }

    fn placement() -> Placement {
        Placement {
            runtime_address: "unix:/s".into(),
            local_resources: BTreeMap::from([("Temp".to_owned(), PathBuf::from("/l/Temp"))]),
            endpoints: BTreeMap::from([(
                "Http".to_owned(),
                (
                    SocketAddr::from(([127, 0, 0, 1], 8081)),
                    EndpointProtocol::Http,
                ),
            )]),
        }
    }

    #[test]
    fn xpaths_resolve_for_this_instance_or_say_why_not() {
        let i = "/RoleEnvironment/CurrentInstance";
        let cases: Vec<(String, Result<&str, &str>)> = vec![
            (format!("{i}/@id"), Ok("Web_IN_2")),
            (format!("{i}/@updateDomain"), Ok("2")),
            (
                format!("{i}/Endpoints/Endpoint[@name='Http']/@port"),
                Ok("8081"),
            ),
            (
                format!("{i}/Endpoints/Endpoint[@name='Http']/@address"),
                Ok("127.0.0.1"),
            ),
            (
                format!("{i}/Endpoints/Endpoint[@name='Http']/@protocol"),
                Ok("http"),
            ),
            (
                format!("{i}/LocalResources/LocalResource[@name='Temp']/@path"),
                Ok("/l/Temp"),
            ),
            (
                format!("{i}/LocalResources/LocalResource[@name='Temp']/@sizeInMB"),
                Ok("64"),
            ),
            (
                format!("{i}/ConfigurationSettings/ConfigurationSetting[@name='Greeting']/@value"),
                Ok("hi"),
            ),
            (
                format!("{i}/Endpoints/Endpoint[@name='Tcp']/@port"),
                Err("names endpoint Tcp, which the role does not have"),
            ),
            (
                format!("{i}/LocalResources/LocalResource[@name='Cache']/@path"),
                Err("names local resource Cache, which the role does not have"),
            ),
            (
                "/RoleEnvironment/Deployment/@name".into(),
                Err("is not one weft can resolve"),
            ),
        ];
        for (xpath, expected) in cases {
            let got = resolve(&xpath, &spec(), &placement());
            match expected {
                Ok(value) => assert_eq!(got.as_deref(), Ok(value), "{xpath}"),
                Err(why) => {
                    let message = got.expect_err(&xpath);
                    assert!(message.contains(why), "{xpath}: {message}");
                    assert!(
                        message.contains(&xpath),
                        "{xpath}: the message names the xpath"
                    );
                }
            }
        }
    }

    #[test]
    fn endpoint_names_become_variable_names() {
        assert_eq!(env_name("HttpIn"), "HTTPIN");
        assert_eq!(env_name("my-ep.1"), "MY_EP_1");
    }
}
