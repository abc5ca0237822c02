//! The typed model read from real files carries what the fabric needs:
//! endpoints, xpaths, storage, probes, sizes, instance counts.

use std::path::Path;

use weft_model::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/service-models"
);

fn def(dir: &str, file: &str) -> ServiceDefinition {
    let bytes = std::fs::read(Path::new(FIXTURES).join(dir).join(file)).unwrap();
    ServiceDefinition::parse(file, &bytes).0.expect("parses")
}

fn cfg(dir: &str, file: &str) -> ServiceConfiguration {
    let bytes = std::fs::read(Path::new(FIXTURES).join(dir).join(file)).unwrap();
    ServiceConfiguration::parse(file, &bytes).0.expect("parses")
}

#[test]
fn comms_avpbot_worker_role() {
    let d = def("comms-avpbot", "ServiceDefinition.csdef");
    let role = d.role("AVPWorkerRole").unwrap();
    assert_eq!(role.kind, RoleKind::Worker);
    assert_eq!(
        role.vm_size().limits(),
        VmLimits {
            cores: 4,
            memory_mib: 14336,
            disk_gib: 200
        }
    );
    assert_eq!(
        role.runtime.as_ref().unwrap().execution_context,
        ExecutionContext::Elevated
    );
    let input = &role.endpoints.input[0];
    assert_eq!(
        (*input.port, input.local_port()),
        (443, LocalPort::Port(9441))
    );
    let iie = &role.endpoints.instance_input[0];
    let range = iie.public_ports.as_ref().unwrap();
    assert_eq!(
        (*iie.local_port, *range.min, *range.max, range.len()),
        (10100, 10100, 10199, 100)
    );
    let task = &role.startup[0];
    assert_eq!(
        (task.task_type, task.execution_context),
        (TaskType::Simple, ExecutionContext::Elevated)
    );
    let xpaths: Vec<RoleInstanceXPath> = task
        .environment
        .iter()
        .filter_map(|v| match &v.value {
            VariableValue::RoleInstance(x) => Some(x.value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        xpaths,
        [
            RoleInstanceXPath::EndpointPort("DefaultEndpoint".into()),
            RoleInstanceXPath::EndpointPort("InstanceCallControlEndpoint".into()),
            RoleInstanceXPath::EndpointAddress("InstanceMediaControlEndpoint".into()),
            RoleInstanceXPath::ConfigurationSetting("DefaultCertificate".into()),
        ]
    );
    let storage = &role.local_storage[0];
    assert_eq!(
        (storage.size_mb(), storage.clean_on_role_recycle),
        (1024, false)
    );
    assert_eq!(d.upgrade_domains(), 5);
}

#[test]
fn nugetgallery_probes_and_https() {
    let d = def("nugetgallery-cloud", "ServiceDefinition.csdef");
    let probe = d.probe("HTTP").unwrap();
    assert_eq!(probe.protocol.value, ProbeProtocol::Http);
    assert_eq!(probe.path.as_deref().map(String::as_str), Some("/"));
    assert_eq!(
        (probe.interval_seconds(), probe.timeout_seconds()),
        (15, 31)
    );
    let role = d.role("NuGetGallery").unwrap();
    let https = role
        .endpoints
        .input
        .iter()
        .find(|e| *e.name == "HttpsEndpoint")
        .unwrap();
    assert_eq!(https.protocol.value, InputProtocol::Https);
    assert_eq!(
        https.certificate.as_deref().map(String::as_str),
        Some("SSLCertificate")
    );
    assert_eq!(
        role.imports
            .iter()
            .map(|i| i.module.name())
            .collect::<Vec<_>>(),
        ["RemoteAccess", "RemoteForwarder", "Diagnostics"]
    );
    assert_eq!(role.sites.len(), 1);
}

#[test]
fn lokad_utf16_configuration_and_legacy_defaults() {
    let d = def("lokad-cloud-2011", "ServiceDefinition.csdef");
    assert_eq!(d.upgrade_domains(), 1);
    let c = cfg("lokad-cloud-2011", "ServiceConfiguration.cscfg");
    assert_eq!(c.source.encoding(), TextEncoding::Utf16Le);
    assert_eq!(c.os_version(), OsVersion::Latest);
    assert_eq!(
        c.os_family(),
        1,
        "no osFamily and osVersion * means family 1"
    );
    assert!(c.roles.iter().all(|r| r.instance_count() >= 1));
}

#[test]
fn orleans_tictactoe_local_storage_default_size() {
    let d = def("orleans-tictactoe", "ServiceDefinition.csdef");
    let sizes: Vec<u64> = d
        .roles
        .iter()
        .flat_map(|r| r.local_storage.iter().map(|l| l.size_mb()))
        .collect();
    assert!(sizes.contains(&LocalStorage::DEFAULT_SIZE_MB), "{sizes:?}");
}

#[test]
fn dash_ilb_network_configuration_is_kept() {
    let c = cfg(
        "dash-https-ilb",
        "ServiceConfiguration.PublishHttps.ILB.cscfg",
    );
    let net = c.network.as_ref().unwrap();
    assert_eq!(net.load_balancer_names(), ["Dash_ILB"]);
    let names: Vec<&str> = net.other.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["VirtualNetworkSite", "AddressAssignments", "LoadBalancers"]
    );
    let d = def("dash-https-ilb", "ServiceDefinition.ILB.csdef");
    let lb: Vec<&str> = d.roles[0]
        .endpoints
        .input
        .iter()
        .filter_map(|e| e.load_balancer.as_deref().map(String::as_str))
        .collect();
    assert!(lb.contains(&"Dash_ILB"), "{lb:?}");
}

#[test]
fn cses_reservedip_resolves_for_the_fabric_except_unrunnable_roles() {
    // The worker role has no ProgramEntryPoint: load refuses it (W0303),
    // while validation alone reports no error.
    let dir = Path::new(FIXTURES).join("cses-ev2-reservedip");
    let err = load(
        &dir.join("ServiceDefinition.csdef"),
        &dir.join("ServiceConfigurationWithVirtualIp.Cloud.cscfg"),
    )
    .unwrap_err();
    let LoadError::Invalid { diagnostics, .. } = err else {
        panic!("expected invalid")
    };
    assert!(diagnostics.iter().any(|d| d.code == Code::W0303));
    assert!(!diagnostics.iter().any(|d| d.is_error()));
}
