//! Planning: from a service model to instance specs and VIPs.

use std::path::PathBuf;

use weft_agent::protocol::{
    EndpointKind, EndpointProtocol, EnvValue, PackageRef, ProbeSpec, TaskType,
};
use weft_fabric::spec::{self, VipPlan};
use weft_model::{RoleInstanceXPath, ServiceModel};

fn model(csdef: &str, cscfg: &str) -> ServiceModel {
    ServiceModel::from_bytes(("c.csdef", csdef.as_bytes()), ("c.cscfg", cscfg.as_bytes())).unwrap()
}

fn package() -> PackageRef {
    PackageRef {
        path: PathBuf::from("/state/packages/abc.cspkg"),
        digest: "abc".into(),
    }
}

fn hello() -> ServiceModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let csdef = std::fs::read_to_string(dir.join("ServiceDefinition.csdef")).unwrap();
    let cscfg = std::fs::read_to_string(dir.join("ServiceConfiguration.Local.cscfg")).unwrap();
    model(&csdef, &cscfg)
}

#[test]
fn the_hello_example_plans_its_instances_endpoints_and_vip() {
    let plan = spec::plan("d".repeat(32).as_str(), &hello(), &package(), 2);
    let ids: Vec<_> = spec::instance_ids(&plan).collect();
    assert_eq!(ids, ["Web_IN_0", "Web_IN_1", "Worker_IN_0"]);
    assert_eq!(
        plan.vips,
        [VipPlan {
            role: "Web".into(),
            endpoint: "HttpIn".into(),
            instance: None,
            requested_port: 8080,
            protocol: "http".into(),
            idle_timeout_minutes: Some(4),
            source_ip_affinity: false,
        }]
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);

    let web = &plan.roles[0].instances[1];
    assert_eq!(
        (web.update_domain, web.fault_domain, web.incarnation),
        (1, 1, 1)
    );
    assert_eq!(web.entry_point.as_deref(), Some("./hello web"));
    assert!(!web.set_ready_on_process_start);
    assert_eq!(web.package, package());
    assert_eq!(web.settings["Greeting"], "hello from weft");
    let ep = &web.endpoints[0];
    assert_eq!(
        (ep.name.as_str(), ep.kind, ep.protocol, ep.local_port),
        (
            "HttpIn",
            EndpointKind::Input,
            EndpointProtocol::Http,
            Some(8080)
        )
    );
    assert_eq!(
        ep.probe,
        Some(ProbeSpec {
            http_path: Some("/healthz".into()),
            port: None,
            interval_ms: 5000,
            timeout_ms: 11000
        })
    );
    assert_eq!(web.local_resources[0].name, "Scratch");
    assert!(web.local_resources[0].clean_on_role_recycle);
    assert_eq!(web.limits.cores, Some(1));

    let worker = &plan.roles[1].instances[0];
    assert_eq!(worker.startup.len(), 1);
    assert_eq!(worker.startup[0].task_type, TaskType::Simple);
    let EnvValue::XPath(xpath) = &worker.startup[0].environment[0].value else {
        panic!("not an xpath")
    };
    assert_eq!(
        RoleInstanceXPath::parse(xpath),
        Some(RoleInstanceXPath::LocalResourcePath("Work".into()))
    );
}

#[test]
fn every_documented_xpath_reads_back_as_itself() {
    let all = [
        RoleInstanceXPath::Emulated,
        RoleInstanceXPath::DeploymentId,
        RoleInstanceXPath::InstanceId,
        RoleInstanceXPath::RoleName,
        RoleInstanceXPath::UpdateDomain,
        RoleInstanceXPath::FaultDomain,
        RoleInstanceXPath::ConfigurationSetting("Greeting".into()),
        RoleInstanceXPath::LocalResourcePath("Work".into()),
        RoleInstanceXPath::LocalResourceSize("Work".into()),
        RoleInstanceXPath::EndpointAddress("HttpIn".into()),
        RoleInstanceXPath::EndpointPort("HttpIn".into()),
        RoleInstanceXPath::EndpointProtocol("HttpIn".into()),
    ];
    for x in all {
        assert_eq!(
            RoleInstanceXPath::parse(&spec::xpath_text(&x)),
            Some(x.clone()),
            "{x:?}"
        );
    }
}

const NS_DEF: &str = "http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition";
const NS_CFG: &str = "http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration";

#[test]
fn instance_input_endpoints_get_one_vip_per_instance_from_the_range() {
    let csdef = format!(
        r#"<ServiceDefinition name="s" xmlns="{NS_DEF}">
  <WorkerRole name="W">
    <Runtime><EntryPoint><ProgramEntryPoint commandLine="./w" setReadyOnProcessStart="true" /></EntryPoint></Runtime>
    <Endpoints>
      <InstanceInputEndpoint name="Rdp" protocol="tcp" localPort="3389">
        <AllocatePublicPortFrom><FixedPortRange min="10100" max="10104" /></AllocatePublicPortFrom>
      </InstanceInputEndpoint>
      <InternalEndpoint name="Gossip" protocol="tcp" port="7000" />
    </Endpoints>
  </WorkerRole>
</ServiceDefinition>"#
    );
    let cscfg = format!(
        r#"<ServiceConfiguration serviceName="s" xmlns="{NS_CFG}"><Role name="W"><Instances count="3" /></Role></ServiceConfiguration>"#
    );
    let plan = spec::plan("d", &model(&csdef, &cscfg), &package(), 2);
    let vips: Vec<_> = plan
        .vips
        .iter()
        .map(|v| (v.instance.as_deref(), v.requested_port))
        .collect();
    assert_eq!(
        vips,
        [
            (Some("W_IN_0"), 10100),
            (Some("W_IN_1"), 10101),
            (Some("W_IN_2"), 10102)
        ]
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let eps: Vec<_> = plan.roles[0].instances[0]
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.local_port))
        .collect();
    assert_eq!(
        eps,
        [
            ("Gossip", EndpointKind::Internal, Some(7000)),
            ("Rdp", EndpointKind::InstanceInput, Some(3389))
        ]
    );
}

#[test]
fn an_endpoints_distribution_idle_timeout_and_acl_reach_its_vip_plan() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let csdef = std::fs::read_to_string(dir.join("ServiceDefinition.csdef"))
        .unwrap()
        .replace(
            r#"port="8080" loadBalancerProbe="HttpProbe""#,
            r#"port="8080" loadBalancerProbe="HttpProbe" loadBalancerDistribution="sourceIP" idleTimeoutInMinutes="9""#,
        );
    let cscfg = std::fs::read_to_string(dir.join("ServiceConfiguration.Local.cscfg"))
        .unwrap()
        .replace(
            "</ServiceConfiguration>",
            r#"<NetworkConfiguration>
    <AccessControls>
      <AccessControl name="office">
        <Rule action="deny" description="guests" order="200" remoteSubnet="10.1.0.0/16" />
        <Rule action="permit" description="office" order="100" remoteSubnet="10.0.0.0/8" />
      </AccessControl>
    </AccessControls>
    <EndpointAcls><EndpointAcl role="Web" endpoint="HttpIn" accessControl="office" /></EndpointAcls>
  </NetworkConfiguration>
</ServiceConfiguration>"#,
        );
    let plan = spec::plan(
        "d".repeat(32).as_str(),
        &model(&csdef, &cscfg),
        &package(),
        2,
    );
    assert!(plan.vips[0].source_ip_affinity);
    assert_eq!(plan.vips[0].idle_timeout_minutes, Some(9));
    let acl = plan
        .access_for("Web", "HttpIn")
        .expect("an ACL for Web/HttpIn");
    assert_eq!(acl.access_control, "office");
    let rules: Vec<(u64, bool, &str)> = acl
        .rules
        .iter()
        .map(|r| (r.order, r.permit, r.remote_subnet.as_str()))
        .collect();
    assert_eq!(
        rules,
        [(200, false, "10.1.0.0/16"), (100, true, "10.0.0.0/8")]
    );
    assert!(plan.access_for("Worker", "HttpIn").is_none());
}
