//! Blob conformance through the official Python SDK (azure-storage-blob),
//! one fresh `weft storage` per case.

#[path = "storage_support.rs"]
mod support;

use support::Server;

fn sdk(case: &str) {
    Server::start().run_case("blob_sdk.py", case);
}

#[test]
fn containers_create_list_page_metadata_delete() {
    sdk("containers");
}

#[test]
fn missing_container_is_404_container_not_found() {
    sdk("missing_container");
}

#[test]
fn blob_content_properties_and_metadata_round_trip() {
    sdk("blob_round_trip");
}

#[test]
fn etag_mismatch_is_412_and_if_none_match_is_304() {
    sdk("etag_conditions");
}

#[test]
fn ranged_reads_and_416() {
    sdk("ranges");
}

#[test]
fn listing_prefix_delimiter_and_paging_exactly_once() {
    sdk("listing");
}

#[test]
fn staged_blocks_commit_in_the_listed_order() {
    sdk("block_lists");
}

#[test]
fn anonymous_reads_only_from_public_containers() {
    sdk("public_access");
}

/// A 64 MiB blob goes up as one Put Blob and comes down again; the server's
/// peak memory stays far below the blob's size (bytes stream to and from disk).
#[test]
fn large_blob_streams_with_bounded_memory() {
    let server = Server::start();
    server.run_case("blob_sdk.py", "large_blob");
    let peak_mib = server.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 48,
        "server peak RSS {peak_mib} MiB after a 64 MiB upload and download: bytes are being buffered"
    );
}

/// An acknowledged write survives `kill -9` and a restart.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let server = Server::start();
    server.run_case("blob_sdk.py", "durability_write");
    let tmp = server.kill9().expect("the server owned its temp dir");
    let again = Server::start_in(tmp.path());
    again.run_case("blob_sdk.py", "durability_read");
}

/// SIGTERM stops the server cleanly (exit 0) and the data is still there.
#[test]
fn sigterm_shuts_down_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path());
    server.run_case("blob_sdk.py", "durability_write");
    let status = server.terminate();
    assert!(
        status.success(),
        "weft storage exited with {status} on SIGTERM"
    );
    Server::start_in(tmp.path()).run_case("blob_sdk.py", "durability_read");
}

#[test]
fn account_service_and_stored_policy_sas_tokens() {
    sdk("sas_tokens");
}

#[test]
fn copy_blob_within_the_service_shares_data_safely() {
    sdk("copy_blob");
}

#[test]
fn append_blobs_grow_at_the_end_under_their_conditions() {
    sdk("append_blobs");
}

#[test]
fn blob_and_container_leases_guard_writes() {
    sdk("leases");
}

#[test]
fn snapshots_keep_old_versions_until_deleted() {
    sdk("snapshots");
}

/// Metadata names keep their case through the SDK: properties, downloads,
/// listings, snapshots and block lists.
#[test]
fn container_and_blob_metadata_names_keep_their_case() {
    sdk("metadata_case");
}
