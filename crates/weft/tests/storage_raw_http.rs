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
