//! `weft upgrade` on a running `weft up`: an auto upgrade of 10 web
//! instances over 5 upgrade domains under continuous load through the VIP
//! (never two domains down, never fewer than 8 Ready, no failed request),
//! and a package that never gets Ready stopped at the first domain — rolled
//! back by `weft rollback`, or at once with `--auto-rollback` — without
//! touching another domain.

mod fabric_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_support::*;
use serde_json::Value;

fn ten_web(cscfg: String) -> String {
    with_instances(&cscfg, "Web", 10)
}

/// A second copy of the app with another Greeting and an extra file, so
/// the package digest differs.
fn version_two(root: &Path) -> PathBuf {
    let app = hello_app(&root.join("v2"), |c| {
        ten_web(c).replace("hello from weft", "hello again from weft")
    });
    std::fs::write(app.join("Web").join("VERSION"), "2\n").unwrap();
    app
}

/// A copy whose web role exits at once with status 3: never Ready.
fn broken(root: &Path) -> PathBuf {
    let app = hello_app(&root.join("broken"), ten_web);
    let web = app.join("Web").join("hello");
    std::fs::remove_file(&web).unwrap();
    std::fs::write(
        &web,
        "#!/bin/sh\necho 'cannot reach the database' >&2\nexit 3\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&web).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&web, perms).unwrap();
    app
}

fn events(fabric: &Fabric) -> Vec<Value> {
    let (status, events) = fabric.get("/v1/services/hello/deployments/production/events");
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().clone()
}

/// Replays the instance events from the moment all `total` web instances
/// were Ready: the most upgrade domains down at once and the fewest Ready.
fn worst(events: &[Value], total: usize) -> (usize, usize) {
    let mut state: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    let (mut most_down, mut fewest, mut counting) = (0, usize::MAX, false);
    for e in events {
        let (Some(id), Some(ready), Some(ud)) = (
            e["instance"].as_str(),
            e["ready"].as_bool(),
            e["upgradeDomain"].as_u64(),
        ) else {
            continue;
        };
        if !id.starts_with("Web_IN_") {
            continue;
        }
        state.insert(id.to_owned(), (ready, ud));
        let up = state.values().filter(|(r, _)| *r).count();
        counting |= up == total;
        if counting {
            let down: BTreeSet<u64> = state
                .values()
                .filter(|(r, _)| !r)
                .map(|(_, u)| *u)
                .collect();
            most_down = most_down.max(down.len());
            fewest = fewest.min(up);
        }
    }
    (most_down, fewest)
}

fn pids_by_id(fabric: &Fabric) -> BTreeMap<String, u64> {
    fabric
        .instances("hello")
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["pid"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn ud_of(id: &str) -> u64 {
    id.rsplit('_').next().unwrap().parse::<u64>().unwrap() % 5
}

fn ms(e: &Value) -> u64 {
    e["timeMs"].as_u64().unwrap()
}

#[test]
fn auto_upgrade_of_ten_instances_walks_one_domain_at_a_time_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), ten_web);
    let v2 = version_two(tmp.path());
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let before = fabric.deployment("hello").unwrap()["packageDigest"].clone();
    let vip = fabric.web_vip("hello");

    // The plan first: one UD at a time, 8 of 10 web instances left.
    let plan = fabric.weft(&["upgrade", v2.to_str().unwrap(), "--plan"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        text.starts_with("auto upgrade over 5 upgrade domain(s)\n"),
        "{text}"
    );
    assert!(
        text.contains("  step 0: upgrade domain 0: down: Web_IN_0, Web_IN_5, Worker_IN_0; ready: Web 8/10, Worker 0/1\n"),
        "{text}"
    );
    assert_eq!(
        fabric.deployment("hello").unwrap()["packageDigest"],
        before,
        "--plan changed the deployment"
    );

    let load = Load::start(vip, 2);
    let kept = KeepAlive::start(vip, 2);
    let started = Instant::now();
    let out = fabric.weft(&[
        "upgrade",
        v2.to_str().unwrap(),
        "--mode",
        "auto",
        "--min-healthy-time",
        "200ms",
        "--domain-timeout",
        "20s",
    ]);
    let wall = started.elapsed();
    load.served_more();
    kept.served_more();
    let (sent, failed, greetings) = load.finish();
    let (kept_sent, kept_failed, reconnects) = kept.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weft upgrade failed:\n{stdout}\n{}\nfabric:\n{}",
        String::from_utf8_lossy(&out.stderr),
        fabric.output()
    );
    assert!(
        stdout.contains("upgraded hello (production) in "),
        "{stdout}"
    );

    let d = fabric.deployment("hello").unwrap();
    assert_ne!(d["packageDigest"], before);
    assert!(d["upgradeStatus"].is_null(), "{}", d["upgradeStatus"]);
    assert!(all_ready(&fabric.instances("hello"), 11));
    let events = events(&fabric);
    let (most_down, fewest) = worst(&events, 10);
    assert_eq!(most_down, 1, "two upgrade domains were down together");
    assert!(
        fewest >= 8,
        "only {fewest} web instances were Ready at one point"
    );
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the upgrade"
    );
    assert_eq!(
        kept_failed, 0,
        "{kept_failed} of {kept_sent} kept-alive requests failed during the upgrade"
    );
    assert!(
        greetings.contains("hello again from weft") && greetings.contains("hello from weft"),
        "{greetings:?}"
    );

    // The numbers for the closing note: per UD, walking → healthy.
    let walking: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["kind"] == "domainWalking" && e["message"].as_str().unwrap().contains("recycling")
        })
        .collect();
    let healthy: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "domainHealthy")
        .collect();
    assert_eq!(walking.len(), 5);
    assert_eq!(healthy.len(), 5);
    let per_ud: Vec<u64> = walking
        .iter()
        .zip(&healthy)
        .map(|(w, h)| ms(h) - ms(w))
        .collect();
    eprintln!(
        "upgrade of 10 web + 1 worker over 5 UDs, min healthy 200 ms: wall {} ms (CLI), per UD walking→healthy {per_ud:?} ms; new-connection requests sent {sent}, failed {failed}; kept-alive requests sent {kept_sent}, failed {kept_failed}, resent after a close {reconnects}",
        wall.as_millis()
    );
}

#[test]
fn a_package_that_never_gets_ready_stops_at_the_first_domain_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), ten_web);
    let bad = broken(tmp.path());
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let before = pids_by_id(&fabric);

    // Without rollback: stopped at UD 0, saying why.
    let out = fabric.weft(&[
        "upgrade",
        bad.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
        "--domain-timeout",
        "20s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("upgrading failed: upgrade domain(s) [0]: role instance Web_IN_")
            && stderr.contains("exited with status 3"),
        "{stderr}"
    );
    let status = fabric.deployment("hello").unwrap()["upgradeStatus"].clone();
    assert_eq!(status["currentUpgradeDomain"], 0, "{status}");
    assert!(
        status["failed"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{status}"
    );
    let now = pids_by_id(&fabric);
    for (id, pid) in &before {
        if ud_of(id) != 0 {
            assert_eq!(now[id], *pid, "{id} outside UD 0 was touched");
        }
    }
    // A second upgrade is refused while this one is unfinished.
    let again = fabric.weft(&["upgrade", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        err.contains("is being upgraded") && err.contains("weft rollback"),
        "{err}"
    );

    // weft rollback restores UD 0 only.
    let rb = fabric.weft(&["rollback"]);
    assert!(
        rb.status.success(),
        "{}{}",
        String::from_utf8_lossy(&rb.stdout),
        String::from_utf8_lossy(&rb.stderr)
    );
    assert!(
        String::from_utf8_lossy(&rb.stdout).contains("note: walking back upgrade domain(s) [0]")
    );
    let restored = fabric.wait_instances(
        "hello",
        "all ready after the rollback",
        Duration::from_secs(20),
        |i| all_ready(i, 11),
    );
    assert!(fabric.deployment("hello").unwrap()["upgradeStatus"].is_null());
    for i in &restored {
        let id = i["id"].as_str().unwrap();
        if ud_of(id) != 0 {
            assert_eq!(
                i["pid"].as_u64().unwrap(),
                before[id],
                "{id} outside UD 0 was touched"
            );
        }
    }

    // With --auto-rollback: the same, at once.
    let before = pids_by_id(&fabric);
    let out = fabric.weft(&[
        "upgrade",
        bad.to_str().unwrap(),
        "--auto-rollback",
        "--min-healthy-time",
        "200ms",
        "--domain-timeout",
        "20s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("exited with status 3")
            && stderr.contains("; upgrade domain(s) [0] restored to package "),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("RollbackStarted") && stdout.contains("DomainRestored"),
        "{stdout}"
    );
    let restored = fabric.wait_instances(
        "hello",
        "all ready after the auto-rollback",
        Duration::from_secs(20),
        |i| all_ready(i, 11),
    );
    assert!(fabric.deployment("hello").unwrap()["upgradeStatus"].is_null());
    for i in &restored {
        let id = i["id"].as_str().unwrap();
        if ud_of(id) != 0 {
            assert_eq!(
                i["pid"].as_u64().unwrap(),
                before[id],
                "{id} outside UD 0 was touched"
            );
        }
    }
    let out = fabric.weft(&["events", "--no-instances"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("HealthGateFailed") && text.contains("RollbackCompleted"),
        "{text}"
    );
}

#[test]
fn a_fabric_killed_mid_upgrade_resumes_it_without_walking_a_domain_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), ten_web);
    let v2 = version_two(tmp.path());
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let out = fabric.weft(&[
        "upgrade",
        v2.to_str().unwrap(),
        "--no-wait",
        "--min-healthy-time",
        "1s",
        "--domain-timeout",
        "20s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = fabric.deployment("hello").unwrap()["upgradeStatus"].clone();
        if status["currentUpgradeDomain"] == 2 && status["currentUpgradeDomainState"] == "During" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upgrade never reached UD 2: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fabric.signal("KILL");
    fabric.wait_exit(Duration::from_secs(10));
    drop(fabric);

    let fabric = Fabric::start(&state, &[]);
    let deadline = Instant::now() + Duration::from_secs(40);
    while !fabric.deployment("hello").unwrap()["upgradeStatus"].is_null() {
        assert!(
            Instant::now() < deadline,
            "the upgrade did not finish after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fabric.wait_instances("hello", "all ready", Duration::from_secs(20), |i| {
        all_ready(i, 11)
    });
    let events = events(&fabric);
    let uds = |kind: &str, needle: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["message"].as_str().unwrap().contains(needle))
            .map(|e| e["upgradeDomain"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        uds("domainHealthy", ""),
        [0, 1, 2, 3, 4],
        "a domain walked twice or skipped"
    );
    assert_eq!(uds("domainWalking", "recycling Web_IN_"), [0, 1, 2, 3, 4]);
    let completed = events
        .iter()
        .filter(|e| e["kind"] == "upgradeCompleted")
        .count();
    assert_eq!(completed, 1);
}

#[test]
fn a_configuration_change_and_a_scale_in_under_load_fail_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), ten_web);
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let vip = fabric.web_vip("hello");
    let before = pids_by_id(&fabric);
    let cscfg = std::fs::read_to_string(app.join("ServiceConfiguration.Local.cscfg")).unwrap();

    // New settings: every instance keeps running and answers with them.
    let bonjour = tmp.path().join("bonjour.cscfg");
    std::fs::write(
        &bonjour,
        cscfg.replace("hello from weft", "bonjour from weft"),
    )
    .unwrap();
    let load = Load::start(vip, 2);
    let started = Instant::now();
    let out = fabric.weft(&[
        "config",
        "set",
        bonjour.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
    ]);
    let settings_wall = started.elapsed();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (settings_sent, settings_failed, _) = load.finish();
    assert_eq!(
        pids_by_id(&fabric),
        before,
        "a configuration change recycled an instance"
    );
    let answers: BTreeSet<String> = (0..40)
        .filter_map(|_| http(vip, "GET", "/", &[]))
        .map(|(_, body)| String::from_utf8_lossy(&body).into_owned())
        .filter_map(|b| b.split(": ").nth(1).map(|g| g.trim().to_owned()))
        .collect();
    assert_eq!(answers, BTreeSet::from(["bonjour from weft".to_owned()]));
    assert_eq!(
        settings_failed, 0,
        "{settings_failed} of {settings_sent} requests failed"
    );
    let (most_down, fewest) = worst(&events(&fabric), 10);
    assert_eq!(
        (most_down, fewest),
        (0, 10),
        "an instance left the VIP for a settings change"
    );

    // Scale in from 10 to 4: the others drain and go, UD by UD.
    let four = tmp.path().join("four.cscfg");
    std::fs::write(&four, with_instances(&cscfg, "Web", 4)).unwrap();
    let plan = fabric.weft(&["config", "set", four.to_str().unwrap(), "--plan"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains(
            "  step 4: upgrade domain 4: down: Web_IN_4, Web_IN_9; ready: Web 4/4, Worker 1/1\n"
        ),
        "{text}"
    );
    let load = Load::start(vip, 2);
    let kept = KeepAlive::start(vip, 2);
    let started = Instant::now();
    let out = fabric.weft(&[
        "config",
        "set",
        four.to_str().unwrap(),
        "--min-healthy-time",
        "200ms",
    ]);
    let scale_wall = started.elapsed();
    load.served_more();
    kept.served_more();
    let (scale_sent, scale_failed, _) = load.finish();
    let (kept_sent, kept_failed, resent) = kept.finish();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = pids_by_id(&fabric);
    let ids: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "Web_IN_0",
            "Web_IN_1",
            "Web_IN_2",
            "Web_IN_3",
            "Worker_IN_0"
        ]
    );
    for (id, pid) in &after {
        assert_eq!(before[id], *pid, "{id} was recycled by the scale-in");
    }
    for (id, pid) in &before {
        if !after.contains_key(id) {
            assert!(
                !alive(*pid),
                "{id} (pid {pid}) still runs after the scale-in"
            );
        }
    }
    assert_eq!(
        scale_failed, 0,
        "{scale_failed} of {scale_sent} requests failed during the scale-in"
    );
    assert_eq!(
        kept_failed, 0,
        "{kept_failed} of {kept_sent} kept-alive requests failed during the scale-in"
    );
    eprintln!(
        "settings change of 10 web instances: {} ms, requests sent {settings_sent}, failed {settings_failed}; scale-in 10 → 4: {} ms, new-connection requests sent {scale_sent}, failed {scale_failed}, kept-alive requests sent {kept_sent}, failed {kept_failed}, resent after a close {resent}",
        settings_wall.as_millis(),
        scale_wall.as_millis()
    );
}

#[test]
fn a_manual_upgrade_walks_each_domain_when_asked_and_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hello_app(tmp.path(), |c| c);
    let v2 = version_two(tmp.path());
    std::fs::write(
        v2.join("ServiceConfiguration.Local.cscfg"),
        std::fs::read_to_string(app.join("ServiceConfiguration.Local.cscfg"))
            .unwrap()
            .replace("hello from weft", "hello again from weft"),
    )
    .unwrap();
    let state = tmp.path().join("state");
    let mut fabric = Fabric::start(&state, &[app.to_str().unwrap()]);
    fabric.wait_line("instances ready in", Duration::from_secs(1));
    let before = pids_by_id(&fabric);
    let out = fabric.weft(&[
        "upgrade",
        v2.to_str().unwrap(),
        "--mode",
        "manual",
        "--min-healthy-time",
        "200ms",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("weft walk 0"), "{stdout}");
    assert_eq!(
        pids_by_id(&fabric),
        before,
        "a manual upgrade recycled before a walk"
    );
    let status = fabric.deployment("hello").unwrap()["upgradeStatus"].clone();
    assert_eq!(
        (
            status["upgradeType"].as_str(),
            status["currentUpgradeDomain"].as_u64()
        ),
        (Some("Manual"), Some(0))
    );

    let early = fabric.weft(&["walk", "1"]);
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains(
            "cannot walk upgrade domain 1: upgrade domains are walked in order: the next is 0"
        ),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    for ud in 0..5 {
        let out = fabric.weft(&["walk", &ud.to_string()]);
        assert!(
            out.status.success(),
            "walk {ud}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let now = pids_by_id(&fabric);
        for (id, pid) in &before {
            let walked = ud_of(id) <= ud;
            assert_eq!(now[id] != *pid, walked, "{id} after walking UD {ud}");
        }
    }
    assert!(fabric.deployment("hello").unwrap()["upgradeStatus"].is_null());
    let (_, body) = http(fabric.web_vip("hello"), "GET", "/", &[]).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("hello again from weft"));
}
