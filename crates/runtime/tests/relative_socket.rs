//! A relative socket path is served and advertised as an absolute one: the
//! instance runs in its approot, not in the agent's directory. (Its own test
//! binary: it changes the process's current directory.)

mod support;

use support::info;
use weft_runtime::client::RoleEnvironment;
use weft_runtime::host::RuntimeHost;

#[tokio::test]
async fn a_relative_socket_path_is_advertised_absolute() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let err = RuntimeHost::bind("run/../rt.sock".as_ref(), info("Web_IN_0"))
        .await
        .unwrap_err();
    // `run/` does not exist: the error names the absolute path it tried.
    let tried = dir.path().join("run/../rt.sock");
    assert!(
        err.to_string().starts_with(&format!(
            "failed to bind runtime socket {}",
            tried.display()
        )),
        "{err}"
    );

    let host = RuntimeHost::bind("rt.sock".as_ref(), info("Web_IN_0"))
        .await
        .unwrap();
    let expected = dir.path().join("rt.sock");
    assert_eq!(host.address(), format!("unix:{}", expected.display()));
    assert_eq!(host.path(), expected);

    // A role elsewhere still reaches it.
    std::env::set_current_dir("/").unwrap();
    let env = RoleEnvironment::connect_to(host.address().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(env.instance().await.unwrap().instance_id, "Web_IN_0");
}
