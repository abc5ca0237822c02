//! Table conformance through the official Python SDK (azure-data-tables),
//! plus raw-HTTP cases for signatures, versions, formats and batches; one
//! fresh `weft storage` per case.

#[path = "storage_support.rs"]
mod support;

use support::Server;

fn sdk(case: &str) {
    Server::start().run_case("table_sdk.py", case);
}

fn raw(case: &str) {
    Server::start().run_case("table_raw_http.py", case);
}

#[test]
fn tables_create_query_page_delete_and_naming_rules() {
    sdk("tables");
}

#[test]
fn entities_insert_get_update_merge_upsert_delete() {
    sdk("entities");
}

/// ETag mismatch on update, merge and delete is 412 UpdateConditionNotSatisfied.
#[test]
fn etag_mismatch_is_412() {
    sdk("etag_mismatch_is_412");
}

/// Int64, DateTime, Guid, Binary, doubles (NaN, infinities) and the rest
/// come back exactly as written.
#[test]
fn typed_properties_round_trip() {
    sdk("typed_properties_round_trip");
}

#[test]
fn filters_select_and_top() {
    sdk("queries");
}

/// Continuation tokens page through everything exactly once.
#[test]
fn continuation_pages_through_everything_once() {
    sdk("continuation_pages_through_everything_once");
}

/// Batches are atomic; a failing operation is named by its index; more
/// than 100 operations or several partitions are refused.
#[test]
fn batches_are_atomic() {
    sdk("batches");
}

#[test]
fn account_and_table_sas_grant_what_they_say() {
    sdk("shared_access_signatures");
}

/// Stored access policies: set and read back, a SAS naming one works
/// until the policy is removed.
#[test]
fn table_acl_and_policy_sas() {
    sdk("access_policies");
}

#[test]
fn entities_over_the_limits_are_refused_and_store_nothing() {
    sdk("bad_input_stores_nothing");
}

/// An acknowledged insert and batch survive `kill -9` and a restart.
#[test]
fn acknowledged_entities_survive_kill_9() {
    let server = Server::start();
    server.run_case("table_sdk.py", "durability_write");
    let tmp = server.kill9().expect("the server owned its temp dir");
    Server::start_in(tmp.path()).run_case("table_sdk.py", "durability_read");
}

#[test]
fn hand_signed_requests_pass_and_tampered_ones_get_403() {
    raw("signatures");
}

#[test]
fn newer_versions_are_accepted() {
    raw("versions");
}

#[test]
fn nometadata_minimal_and_fullmetadata_formats() {
    raw("formats");
}

/// The service itself refuses a batch across partitions (the SDK checks
/// first, so this is sent by hand).
#[test]
fn a_batch_across_partitions_is_refused_by_the_service() {
    raw("batch_across_partitions");
}

#[test]
fn malformed_bodies_and_paths_are_400() {
    raw("malformed");
}
