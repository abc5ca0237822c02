//! Raw-HTTP conformance: hand-computed SharedKey signatures, error bodies
//! and headers, version acceptance, naming rules, malformed bodies.

#[path = "storage_support.rs"]
mod support;

use support::Server;

fn raw(case: &str) {
    Server::start().run_case("raw_http.py", case);
}

#[test]
fn hand_signed_requests_pass_and_tampered_ones_get_403() {
    raw("signatures");
}

#[test]
fn newer_versions_are_accepted_older_than_2019_02_02_rejected() {
    raw("versions");
}

#[test]
fn names_breaking_azure_rules_are_400() {
    raw("naming_rules");
}

#[test]
fn malformed_bodies_are_refused_and_store_nothing() {
    raw("bad_bodies");
}

#[test]
fn head_errors_carry_the_code_in_a_header_only() {
    raw("head_errors_have_no_body");
}

/// Put Blob, Put Block and Append Block with a chunked body and no
/// Content-Length are 411 MissingContentLengthHeader and store nothing.
#[test]
fn writes_without_content_length_are_411() {
    raw("content_length_required");
}

/// A header past 16 KiB or a head past 64 KiB is 400 InvalidHeaderValue
/// with an Azure error body, on blob and queue.
#[test]
fn oversized_headers_are_400_with_an_azure_body() {
    raw("oversized_headers");
}

/// Queue requests signed here with SharedKey and SharedKeyLite pass, a
/// tampered one gets 403 XML; malformed message bodies are
/// InvalidXmlDocument and enqueue nothing.
#[test]
fn queue_signatures_and_malformed_messages() {
    raw("queue_signatures_and_bodies");
}

/// Unsupported verbs are 405; unknown include values, malformed snapshot
/// times and non-GUID proposed lease ids are 400; blob names past 254
/// path segments are InvalidResourceName.
#[test]
fn verbs_query_values_lease_ids_and_path_segments() {
    raw("query_and_header_values");
}

/// Two metadata headers naming one entry (names are case-insensitive) are
/// 400 InvalidMetadata and change nothing.
#[test]
fn duplicate_metadata_names_are_400() {
    raw("duplicate_metadata_names");
}

/// Metadata names come back in the case they were sent with, on one
/// connection carrying pipelined requests (chunked, HEAD, bodies that look
/// like metadata headers).
#[test]
fn metadata_names_keep_their_case_pipelined() {
    raw("metadata_names_keep_their_case_pipelined");
}
