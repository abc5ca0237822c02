//! Queue conformance through the official Python SDK (azure-storage-queue),
//! one fresh `weft storage` per case.

#[path = "storage_support.rs"]
mod support;

use support::Server;

fn sdk(case: &str) {
    Server::start().run_case("queue_sdk.py", case);
}

#[test]
fn queues_create_list_page_metadata_delete() {
    sdk("queues");
}

#[test]
fn messages_put_peek_get_delete_clear() {
    sdk("messages");
}

/// At-least-once: a received message not deleted before its visibility
/// timeout (1 s here) is delivered again with a higher dequeue count.
#[test]
fn a_message_reappears_after_its_visibility_timeout() {
    sdk("reappears_after_timeout");
}

#[test]
fn update_message_changes_text_and_visibility() {
    sdk("update_message");
}

/// An acknowledged Put Message survives `kill -9` and a restart.
#[test]
fn acknowledged_messages_survive_kill_9() {
    let server = Server::start();
    server.run_case("queue_sdk.py", "durability_write");
    let tmp = server.kill9().expect("the server owned its temp dir");
    Server::start_in(tmp.path()).run_case("queue_sdk.py", "durability_read");
}

/// Names against Azure's queue rules, numofmessages and visibility
/// timeouts out of range: 400 with Azure's codes, nothing consumed.
#[test]
fn bad_names_and_out_of_range_parameters_are_400() {
    sdk("bad_input");
}

/// A message with a one-second time-to-live expires; others stay.
#[test]
fn messages_expire_after_their_time_to_live() {
    sdk("time_to_live");
}

/// Queue service SAS (`raup`, one queue), stored access policies through
/// Set / Get Queue ACL (a token naming a removed policy stops working),
/// and account SAS for the queue service.
#[test]
fn queue_sas_stored_policies_and_acl() {
    sdk("sas_and_acl");
}

/// Queue metadata names keep their case: properties and listings.
#[test]
fn queue_metadata_names_keep_their_case() {
    sdk("metadata_case");
}
