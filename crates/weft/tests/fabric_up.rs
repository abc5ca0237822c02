//! `weft up` as a user runs it: deploy the example, reach it through its
//! VIP, kill instances and see them come back with no failed request, kill
//! the fabric itself and find everything as it was, and bad deployments
//! refused without touching what runs.

mod fabric_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fabric_support::*;

fn fast_worker(cscfg: String) -> String {
    cscfg.replace(
        "<Setting name=\"IntervalSeconds\" value=\"5\" />",
        "<Setting name=\"IntervalSeconds\" value=\"1\" />",
    )
}

#[test]
fn deploy_serve_kill_an_instance_and_recover_without_a_failed_request() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), fast_worker);
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    let ready_line = fabric.wait_line("instances ready in", Duration::from_secs(1));
    assert!(
        ready_line.starts_with("hello: 3 instances ready in"),
        "{ready_line}"
    );
    let url_line = fabric.wait_line("hello Web/HttpIn: ", Duration::from_secs(1));
    assert!(url_line.contains("http://127.0.0.1:"), "{url_line}");

    // Three instances, spread over upgrade and fault domains as Azure does.
    let instances = fabric.instances("hello");
    assert!(all_ready(&instances, 3), "{instances:#?}");
    let placement: Vec<(String, u64, u64)> = instances
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["upgradeDomain"].as_u64().unwrap(),
                i["faultDomain"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        placement,
        vec![
            ("Web_IN_0".into(), 0, 0),
            ("Web_IN_1".into(), 1, 1),
            ("Worker_IN_0".into(), 0, 0)
        ]
    );

    // The VIP balances over both web instances, and each names itself.
    let vip = fabric.web_vip("hello");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = http(vip, "GET", "/", &[]).expect("VIP answers");
        assert_eq!(status, 200);
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("hello from Web_IN_"), "{body}");
        seen.insert(body.split_whitespace().nth(2).unwrap().to_owned());
    }
    assert!(
        seen.contains("Web_IN_0") && seen.contains("Web_IN_1"),
        "{seen:?}"
    );

    // Load through the VIP while an instance is killed with SIGKILL.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match http(vip, "GET", "/", &[]) {
                    Some((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    let old_pid = instances[0]["pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .unwrap();
    let after = fabric.wait_instances(
        "hello",
        "Web_IN_0 replaced and ready",
        Duration::from_secs(20),
        |now| {
            all_ready(now, 3)
                && now[0]["pid"].as_u64().is_some_and(|p| p != old_pid)
                && now[0]["restarts"].as_u64() >= Some(1)
        },
    );
    assert!(!alive(old_pid));
    // Keep the load on a little after the recovery too.
    let until = ok.load(Ordering::Relaxed) + 50;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ok.load(Ordering::Relaxed) < until && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "{} requests failed through the VIP while an instance was killed ({} succeeded)",
        failed.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) >= 50);

    // Status as a table, logs of the worker, both through the CLI.
    let status = fabric.weft(&["status"]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    assert!(
        table.contains("Web_IN_1") && table.contains("ReadyRole"),
        "{table}"
    );
    let mut logs = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !logs.contains("Worker_IN_0: work item") && std::time::Instant::now() < deadline {
        let out = fabric.weft(&["logs", "Worker_IN_0", "--tail", "5"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs = String::from_utf8_lossy(&out.stdout).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(logs.contains("Worker_IN_0: work item"), "{logs}");

    // The API refuses a request without the token, or with the wrong one.
    let api: std::net::SocketAddr = fabric.api.trim_start_matches("http://").parse().unwrap();
    assert_eq!(http(api, "GET", "/v1/services", &[]).unwrap().0, 401);
    assert_eq!(
        http(
            api,
            "GET",
            "/v1/services",
            &[("authorization", "Bearer nope")]
        )
        .unwrap()
        .0,
        401
    );
    let (status, doc) = fabric.get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");

    // Ctrl-C stops every instance and exits 0.
    let pids = pids(&after);
    fabric.signal("INT");
    assert_eq!(fabric.wait_exit(Duration::from_secs(30)), Some(0));
    for pid in pids {
        assert!(!alive(pid), "instance process {pid} outlived weft up");
    }
}

#[test]
fn a_fabric_killed_with_sigkill_comes_back_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), |c| with_instances(&c, "Web", 1));
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    let before = fabric.deployment("hello").unwrap();
    let old = fabric.instances("hello");
    assert!(all_ready(&old, 2), "{old:#?}");

    fabric.signal("KILL");
    fabric.wait_exit(Duration::from_secs(10));
    drop(fabric);
    // With cgroups (this machine has a cgroup2 mount), the agent's sentinel
    // kills the instances as soon as weft dies: none outlives the fabric.
    if has_cgroup2() {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pids(&old).into_iter().any(alive) {
            assert!(
                std::time::Instant::now() < deadline,
                "instances outlived a SIGKILLed weft up: {:?}",
                pids(&old)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // No application named: the fabric runs what its state holds.
    let fabric = Fabric::start(&state, &[]);
    let after = fabric.wait_instances(
        "hello",
        "both instances ready again",
        Duration::from_secs(30),
        |i| all_ready(i, 2),
    );
    let again = fabric.deployment("hello").unwrap();
    assert_eq!(
        again["id"], before["id"],
        "the same deployment, not a new one"
    );
    assert_eq!(again["vips"], before["vips"], "the same VIPs");
    for pid in pids(&old) {
        assert!(
            !alive(pid),
            "a previous run's instance process {pid} survived the restart"
        );
    }
    let ids: Vec<&str> = after.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["Web_IN_0", "Worker_IN_0"]);
    let (status, body) = http(fabric.web_vip("hello"), "GET", "/", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Web_IN_0"));
}

#[test]
fn bad_deployments_are_refused_and_leave_the_running_one_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), |c| with_instances(&c, "Web", 1));
    let state = tmp.path().join("state");
    let fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    let before = fabric.deployment("hello").unwrap();

    // A role whose startup task fails.
    let crash = tmp.path().join("crash");
    std::fs::create_dir_all(crash.join("Crash")).unwrap();
    std::fs::write(crash.join("Crash/readme.txt"), "nothing to run\n").unwrap();
    std::fs::write(
        crash.join("ServiceDefinition.csdef"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceDefinition name="crash" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition">
  <WorkerRole name="Crash" vmsize="ExtraSmall">
    <Startup>
      <Task commandLine="echo preparing; exit 3" executionContext="limited" taskType="simple" />
    </Startup>
    <Runtime>
      <EntryPoint>
        <ProgramEntryPoint commandLine="sleep 600" setReadyOnProcessStart="true" />
      </EntryPoint>
    </Runtime>
  </WorkerRole>
</ServiceDefinition>
"#,
    )
    .unwrap();
    std::fs::write(
        crash.join("ServiceConfiguration.Local.cscfg"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceConfiguration serviceName="crash" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration">
  <Role name="Crash">
    <Instances count="2" />
  </Role>
</ServiceConfiguration>
"#,
    )
    .unwrap();
    let out = fabric.weft(&["deploy", crash.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a failing startup task deployed: {stderr}"
    );
    assert!(stderr.contains("status 3"), "{stderr}");
    assert!(
        fabric.deployment("crash").is_none(),
        "half a deployment is left"
    );

    // A configuration that does not match its definition.
    std::fs::write(
        crash.join("ServiceConfiguration.Local.cscfg"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<ServiceConfiguration serviceName="crash" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceConfiguration">
  <Role name="Crahs">
    <Instances count="2" />
  </Role>
</ServiceConfiguration>
"#,
    )
    .unwrap();
    let out = fabric.weft(&["deploy", crash.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Crahs") && stderr.contains("nothing was deployed"),
        "{stderr}"
    );

    // Deploying into the occupied slot is refused.
    let out = fabric.weft(&["deploy", app.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("already holds deployment"), "{stderr}");

    // The running deployment is exactly as it was.
    let after = fabric.deployment("hello").unwrap();
    assert_eq!(after["id"], before["id"]);
    assert!(all_ready(&fabric.instances("hello"), 2));

    // A second fabric cannot take the first one's API address.
    let out = std::process::Command::new(WEFT)
        .args(["up", "--state", tmp.path().join("other").to_str().unwrap()])
        .args([
            "--no-storage",
            "--api",
            fabric.api.trim_start_matches("http://"),
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("for the management API"), "{stderr}");
}

#[test]
fn a_package_and_config_deploy_and_a_taken_vip_port_is_remapped_and_said() {
    let tmp = tempfile::tempdir().unwrap();
    // Hold a port, and ask for it as the web role's VIP port.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let app = hello_app(tmp.path(), |c| with_instances(&c, "Web", 1));
    let csdef = app.join("ServiceDefinition.csdef");
    let text = std::fs::read_to_string(&csdef).unwrap();
    std::fs::write(
        &csdef,
        text.replace("port=\"8080\"", &format!("port=\"{taken}\"")),
    )
    .unwrap();
    let package = tmp.path().join("hello.cspkg");
    let out = std::process::Command::new(WEFT)
        .args(["package", csdef.to_str().unwrap()])
        .args(["--role", &format!("Web={}", app.join("Web").display())])
        .args([
            "--role",
            &format!("Worker={}", app.join("Worker").display()),
        ])
        .args(["-o", package.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let state = tmp.path().join("state");
    let config = app.join("ServiceConfiguration.Local.cscfg");
    let mut fabric = Fabric::start(
        &state,
        &[
            "--package",
            package.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let note = fabric.wait_line("note:", Duration::from_secs(1));
    assert!(
        note.contains(&format!("port {taken}")) && note.contains("in use"),
        "{note}"
    );
    let vip = fabric.web_vip("hello");
    assert_ne!(vip.port(), taken);
    let (status, body) = http(vip, "GET", "/", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Web_IN_0"));
    let table = String::from_utf8_lossy(&fabric.weft(&["status"]).stdout).into_owned();
    assert!(
        table.contains(&format!("(port {taken} was taken)")),
        "{table}"
    );
    drop(holder);
}

fn has_cgroup2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.contains(" - cgroup2 ")))
}

#[test]
fn an_endpoint_acl_keeps_refused_clients_away_from_the_instances() {
    let tmp = tempfile::tempdir().unwrap();
    // Only 127.0.0.2 may use the web role's VIP: 127.0.0.1 is refused.
    let app = hello_app(tmp.path(), |c| {
        with_instances(&c, "Web", 1).replace(
            "</ServiceConfiguration>",
            r#"  <NetworkConfiguration>
    <AccessControls>
      <AccessControl name="only-two">
        <Rule action="permit" description="the one client" order="100" remoteSubnet="127.0.0.2/32" />
      </AccessControl>
    </AccessControls>
    <EndpointAcls>
      <EndpointAcl role="Web" endpoint="HttpIn" accessControl="only-two" />
    </EndpointAcls>
  </NetworkConfiguration>
</ServiceConfiguration>"#,
        )
    });
    let state = tmp.path().join("state");
    let fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    let vip = fabric.web_vip("hello");
    assert_eq!(
        http(vip, "GET", "/", &[]),
        None,
        "a client the access control list refuses got an answer"
    );
    let from_two = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut conn = socket.connect(vip).await.unwrap();
            conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).await.unwrap();
            answer
        });
    assert!(
        from_two.starts_with("HTTP/1.1 200") && from_two.contains("Web_IN_0"),
        "{from_two}"
    );
}
