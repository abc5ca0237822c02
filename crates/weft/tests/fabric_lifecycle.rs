//! The service lifecycle on a running `weft up`: a staging deployment and
//! `weft swap` under load, instance operations (`weft reboot`, `weft
//! reimage`, `weft delete-instances`), `weft suspend` / `weft start`, and
//! configuration changes an instance accepts live or cancels.

mod fabric_support;

use std::io::BufReader;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_support::*;
use serde_json::Value;

/// A copy of hello whose web role greets with `greeting`, in `root/name`.
fn hello_greeting(root: &Path, name: &str, greeting: &str) -> PathBuf {
    let greeting = greeting.to_owned();
    hello_app(&root.join(name), move |c| {
        c.replace("hello from weft", &greeting)
            .replace("value=\"5\"", "value=\"1\"")
    })
}

/// One GET on a kept-alive connection: the body.
fn get_on(conn: &mut BufReader<TcpStream>) -> String {
    match keep_alive_request(conn) {
        Answer::Ok { body, .. } => body,
        _ => panic!("the kept-alive connection did not answer"),
    }
}

fn body_of(vip: std::net::SocketAddr) -> String {
    let (status, body) = http(vip, "GET", "/", &[]).expect("VIP answers");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

fn events_of(fabric: &Fabric, slot: &str) -> Vec<Value> {
    let (status, events) = fabric.get(&format!("/v1/services/hello/deployments/{slot}/events"));
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().clone()
}

#[test]
fn a_swap_under_load_fails_no_request_and_open_connections_stay_on_the_old_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let blue = hello_greeting(tmp.path(), "blue", "blue");
    let green = hello_greeting(tmp.path(), "green", "green");
    let mut fabric = Fabric::start(&tmp.path().join("state"), &[blue.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let out = fabric.weft_ok(&["deploy", green.to_str().unwrap(), "--slot", "staging"]);
    assert!(out.contains("to staging"), "{out}");
    let prod_vip = fabric.web_vip("hello");
    let stage_vip = fabric.web_vip_in("hello", "staging");
    assert_ne!(prod_vip, stage_vip);
    assert!(body_of(prod_vip).ends_with(": blue\n"));
    assert!(body_of(stage_vip).ends_with(": green\n"));
    let status = fabric.weft_ok(&["status"]);
    assert!(
        status.contains("slot staging") && status.contains(&format!("http://{stage_vip}/")),
        "{status}"
    );
    // Both deployments have the same instance names.
    let names = |slot| -> Vec<String> {
        fabric
            .instances_in("hello", slot)
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("production"), names("staging"));
    let prod_id = fabric.deployment("hello").unwrap()["id"].clone();
    let stage_id = fabric.deployment_in("hello", "staging").unwrap()["id"].clone();

    // A kept-alive connection opened before the swap.
    let held = TcpStream::connect(prod_vip).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut held = BufReader::new(held);
    assert!(get_on(&mut held).ends_with(": blue\n"));

    let load = Load::start(prod_vip, 3);
    let keep = KeepAlive::start(prod_vip, 2);
    load.served_more();
    keep.served_more();
    let out = fabric.weft_ok(&["swap", "hello"]);
    assert!(out.contains("goes to production"), "{out}");
    load.served_more();
    keep.served_more();
    let (sent, failed, greetings) = load.finish();
    let (kept_sent, kept_failed, _) = keep.finish();
    eprintln!(
        "swap under load: {sent} requests on new connections ({failed} failed), {kept_sent} kept alive ({kept_failed} failed)"
    );
    assert_eq!(
        (failed, kept_failed),
        (0, 0),
        "failed requests during the swap: {failed} of {sent} (new connections), {kept_failed} of {kept_sent} (kept alive)"
    );
    assert!(
        greetings.contains("blue") && greetings.contains("green"),
        "the load saw {greetings:?}"
    );

    // New connections reach the swapped deployments at the same addresses.
    assert!(body_of(prod_vip).ends_with(": green\n"));
    assert!(body_of(stage_vip).ends_with(": blue\n"));
    assert_eq!(fabric.web_vip("hello"), prod_vip);
    assert_eq!(fabric.web_vip_in("hello", "staging"), stage_vip);
    assert_eq!(fabric.deployment("hello").unwrap()["id"], stage_id);
    assert_eq!(
        fabric.deployment_in("hello", "staging").unwrap()["id"],
        prod_id
    );
    // The connection opened before is still answered by the old deployment.
    assert!(get_on(&mut held).ends_with(": blue\n"));
    drop(held);
    // A swap request without the body naming the deployments in the slots
    // is refused (a retry could not be told from a second swap).
    let api: std::net::SocketAddr = fabric.api.trim_start_matches("http://").parse().unwrap();
    let (status, body) = http(
        api,
        "POST",
        "/v1/services/hello/swap",
        &[("authorization", &format!("Bearer {}", fabric.token))],
    )
    .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("sourceDeployment"), "{body}");
    assert_eq!(fabric.deployment("hello").unwrap()["id"], stage_id);
    for slot in ["production", "staging"] {
        assert!(
            events_of(&fabric, slot)
                .iter()
                .any(|e| e["kind"] == "swapped"),
            "{slot} history has no swap"
        );
    }

    // Deployments with other endpoints do not swap, and nothing changes.
    fabric.weft_ok(&["delete", "hello", "--slot", "staging"]);
    let other = hello_greeting(tmp.path(), "other", "other");
    let csdef = other.join("ServiceDefinition.csdef");
    let text = std::fs::read_to_string(&csdef).unwrap();
    std::fs::write(&csdef, text.replace("port=\"8080\"", "port=\"8089\"")).unwrap();
    fabric.weft_ok(&["deploy", other.to_str().unwrap(), "--slot", "staging"]);
    let before = fabric.get("/v1/services/hello").1;
    let out = fabric.weft(&["swap", "hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot swap the deployments of service `hello`")
            && stderr.contains("input endpoint Web/HttpIn is http on port 8080 in production but http on port 8089 in staging"),
        "{stderr}"
    );
    let after = fabric.get("/v1/services/hello").1;
    let ids = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["id"].clone(), d["slot"].clone(), d["vips"].clone()))
            .collect()
    };
    assert_eq!(ids(&before), ids(&after));
    assert!(body_of(prod_vip).ends_with(": green\n"));

    // The swap is durable: weft killed with SIGKILL comes back with the
    // swapped deployment in production, on the production address.
    let other_vip = fabric.web_vip_in("hello", "staging");
    fabric.signal("KILL");
    fabric.wait_exit(Duration::from_secs(10));
    drop(fabric);
    let fabric = Fabric::start(&tmp.path().join("state"), &[]);
    assert_eq!(fabric.deployment("hello").unwrap()["id"], stage_id);
    // (Production listens at its requested port again if it was remapped
    // and is free now; staging keeps its own address.)
    let prod_vip = fabric.web_vip("hello");
    assert_eq!(fabric.web_vip_in("hello", "staging"), other_vip);
    fabric.wait_instances(
        "hello",
        "production ready again",
        Duration::from_secs(30),
        |now| all_ready(now, 3),
    );
    assert!(body_of(prod_vip).ends_with(": green\n"));
}

/// The `starting after N work items` counts the worker printed, oldest
/// first.
fn worker_starts(fabric: &Fabric) -> Vec<u64> {
    fabric
        .weft_ok(&["logs", "Worker_IN_0", "--stream", "stdout"])
        .lines()
        .filter_map(|l| l.strip_prefix("Worker_IN_0: starting after "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn worker_pid(fabric: &Fabric) -> Option<u64> {
    fabric
        .instances("hello")
        .iter()
        .find(|i| i["id"] == "Worker_IN_0")?["pid"]
        .as_u64()
}

#[test]
fn reboot_keeps_local_storage_reimage_empties_it_and_delete_instances_lowers_the_count() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(&tmp.path().join("app"), |c| {
        with_instances(&c, "Web", 3).replace("value=\"5\"", "value=\"1\"")
    });
    let mut fabric = Fabric::start(&tmp.path().join("state"), &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));

    // The worker counts its work items in its Work local storage
    // (cleanOnRoleRecycle="false"): a reboot keeps the count.
    wait_for("two work items", Duration::from_secs(20), || {
        fabric
            .weft_ok(&["logs", "Worker_IN_0"])
            .contains("Worker_IN_0: work item 2")
            .then_some(())
    });
    let pid = worker_pid(&fabric).unwrap();
    let out = fabric.weft_ok(&["reboot", "Worker_IN_0"]);
    assert!(
        out.contains("Worker_IN_0 of hello (production) rebooted and ready"),
        "{out}"
    );
    assert_ne!(worker_pid(&fabric), Some(pid));
    let starts = wait_for(
        "the rebooted worker's start line",
        Duration::from_secs(10),
        || {
            let s = worker_starts(&fabric);
            (s.len() >= 2).then_some(s)
        },
    );
    assert!(
        *starts.last().unwrap() >= 2,
        "the rebooted worker lost its count: {starts:?}"
    );

    // A reimage starts it from an empty local storage.
    let out = fabric.weft_ok(&["reimage", "Worker_IN_0"]);
    assert!(out.contains("reimaged and ready"), "{out}");
    wait_for(
        "the reimaged worker's start line",
        Duration::from_secs(10),
        || {
            let s = worker_starts(&fabric);
            (s.last() == Some(&0) && s.len() != starts.len()).then_some(())
        },
    );

    // Reboot and Delete Role Instances under load: no failed request, the
    // count drops.
    let vip = fabric.web_vip("hello");
    let load = Load::start(vip, 3);
    let keep = KeepAlive::start(vip, 2);
    load.served_more();
    let web0 = fabric.instances("hello")[0]["pid"].as_u64().unwrap();
    fabric.weft_ok(&["reboot", "Web_IN_0"]);
    assert_ne!(fabric.instances("hello")[0]["pid"].as_u64(), Some(web0));
    load.served_more();
    fabric.weft_ok(&["delete-instances", "Web_IN_1"]);
    load.served_more();
    keep.served_more();
    let (sent, failed, _) = load.finish();
    let (kept_sent, kept_failed, _) = keep.finish();
    eprintln!(
        "reboot + delete-instances under load: {sent} requests on new connections ({failed} failed), {kept_sent} kept alive ({kept_failed} failed)"
    );
    assert_eq!(
        (failed, kept_failed),
        (0, 0),
        "failed during reboot and delete-instances: {failed} of {sent}, {kept_failed} of {kept_sent} kept alive"
    );
    let status = fabric.weft_ok(&["status"]);
    assert!(
        status.contains("Web_IN_0") && status.contains("Web_IN_2") && !status.contains("Web_IN_1"),
        "{status}"
    );
    let json: Value = serde_json::from_str(&fabric.weft_ok(&["status", "--json"])).unwrap();
    let web = &json[0]["deployments"][0]["roles"][0];
    assert_eq!(
        (web["name"].as_str(), web["instanceCount"].as_u64()),
        (Some("Web"), Some(2))
    );
    // The configuration the deployment runs says so, as Azure's does.
    let cscfg = fabric.weft_ok(&["config", "get"]);
    assert!(
        cscfg.contains("<Instances count=\"2\" />") && cscfg.contains("<Instances count=\"1\" />"),
        "{cscfg}"
    );

    // The last instance of a role cannot be deleted; the error names it.
    let out = fabric.weft(&["delete-instances", "Worker_IN_0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("it would delete every instance of role Worker (Worker_IN_0)"),
        "{stderr}"
    );
    assert_eq!(fabric.instances("hello").len(), 3);
}

#[test]
fn suspend_leaves_no_process_survives_a_restart_and_start_brings_every_instance_back() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(&tmp.path().join("app"), |c| c);
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let before = pids(&fabric.instances("hello"));
    assert_eq!(before.len(), 3);
    let vip = fabric.web_vip("hello");

    let out = fabric.weft_ok(&["suspend"]);
    assert!(out.contains("hello (production) suspended"), "{out}");
    let d = fabric.deployment("hello").unwrap();
    assert_eq!(d["status"], "Suspended");
    let instances = fabric.instances("hello");
    assert!(
        instances
            .iter()
            .all(|i| i["status"] == "StoppedVM" && i["pid"].is_null() && i["ready"] == false),
        "{instances:#?}"
    );
    for pid in &before {
        assert!(!alive(*pid), "process {pid} outlived the suspend");
    }
    assert!(
        !matches!(http(vip, "GET", "/", &[]), Some((200, _))),
        "a suspended deployment answered"
    );
    let status = fabric.weft_ok(&["status"]);
    assert!(status.contains("status Suspended"), "{status}");
    // Azure refuses to change a suspended deployment's configuration.
    let cscfg = app.join("ServiceConfiguration.Local.cscfg");
    let out = fabric.weft(&["config", "set", cscfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("start it first with `weft start`"),
        "{stderr}"
    );
    drop(fabric);

    // A restarted fabric keeps it suspended: nothing runs.
    let fabric = Fabric::start(&state, &[]);
    assert_eq!(fabric.deployment("hello").unwrap()["status"], "Suspended");
    let instances = fabric.wait_instances(
        "hello",
        "reported stopped",
        Duration::from_secs(20),
        |now| now.len() == 3 && now.iter().all(|i| i["status"] == "StoppedVM"),
    );
    assert!(pids(&instances).is_empty());

    let out = fabric.weft_ok(&["start", "hello"]);
    assert!(
        out.contains("hello (production) running: every instance ready"),
        "{out}"
    );
    let instances = fabric.instances("hello");
    assert!(all_ready(&instances, 3), "{instances:#?}");
    assert_eq!(fabric.deployment("hello").unwrap()["status"], "Running");
    // (The restarted fabric may listen at the requested port again.)
    assert!(body_of(fabric.web_vip("hello")).starts_with("hello from Web_IN_"));
}

fn web_pids(fabric: &Fabric) -> Vec<u64> {
    fabric
        .instances("hello")
        .iter()
        .filter(|i| i["id"].as_str().unwrap().starts_with("Web_"))
        .map(|i| i["pid"].as_u64().expect("a running web instance"))
        .collect()
}

#[test]
fn a_setting_hello_accepts_changes_live_and_one_it_cancels_recycles_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(&tmp.path().join("app"), |c| with_instances(&c, "Web", 3));
    let mut fabric = Fabric::start(&tmp.path().join("state"), &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let vip = fabric.web_vip("hello");
    let cscfg = app.join("ServiceConfiguration.Local.cscfg");
    let original = std::fs::read_to_string(&cscfg).unwrap();
    let before = web_pids(&fabric);

    let load = Load::start(vip, 3);
    let keep = KeepAlive::start(vip, 2);
    load.served_more();

    // Greeting: hello takes it live (Changed): same processes, new greeting.
    let greeting = tmp.path().join("greeting.cscfg");
    std::fs::write(
        &greeting,
        original.replace("hello from weft", "hello, changed live"),
    )
    .unwrap();
    fabric.weft_ok(&[
        "config",
        "set",
        greeting.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
    ]);
    assert_eq!(
        web_pids(&fabric),
        before,
        "a live change recycled an instance"
    );
    for _ in 0..6 {
        assert!(body_of(vip).ends_with(": hello, changed live\n"));
    }
    load.served_more();

    // Generation: hello cancels Changing; each instance is recycled with
    // the new settings, upgrade domain by upgrade domain.
    let generation = tmp.path().join("generation.cscfg");
    std::fs::write(
        &generation,
        original
            .replace("hello from weft", "hello, changed live")
            .replace(
                "name=\"Generation\" value=\"1\"",
                "name=\"Generation\" value=\"2\"",
            ),
    )
    .unwrap();
    fabric.weft_ok(&[
        "config",
        "set",
        generation.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
    ]);
    let after = web_pids(&fabric);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "cancelled changes keep the old processes: {before:?} → {after:?}"
    );
    assert!(all_ready(&fabric.instances("hello"), 4));
    load.served_more();
    keep.served_more();
    let (sent, failed, greetings) = load.finish();
    let (kept_sent, kept_failed, _) = keep.finish();
    eprintln!(
        "config change (Greeting live, Generation recycled) under load: {sent} requests on new connections ({failed} failed), {kept_sent} kept alive ({kept_failed} failed)"
    );
    assert_eq!(
        (failed, kept_failed),
        (0, 0),
        "failed during the configuration changes: {failed} of {sent}, {kept_failed} of {kept_sent} kept alive"
    );
    assert!(greetings.contains("hello, changed live"), "{greetings:?}");
    assert!(body_of(vip).ends_with(": hello, changed live\n"));
}
