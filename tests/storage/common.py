"""Shared helpers for weft storage conformance scripts.

Each script is run by a Rust integration test as
`python <script> <case>` with WEFT_BLOB_ENDPOINT set to the server's blob
endpoint (http://127.0.0.1:<port>/devstoreaccount1). A case passes when it
returns; any failed assertion or exception fails it.
"""

import os
import sys

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

CASES = {}


def case(f):
    CASES[f.__name__] = f
    return f


def endpoint():
    return os.environ["WEFT_BLOB_ENDPOINT"]


def connection_string():
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint()};"
    )


def expect_error(fn, status, code):
    """Runs fn, which must fail with the given HTTP status and error code."""
    from azure.core.exceptions import HttpResponseError

    try:
        fn()
    except HttpResponseError as e:
        assert e.status_code == status, f"want status {status}, got {e.status_code}: {e}"
        if code is not None:
            assert e.error_code == code, f"want error code {code}, got {e.error_code}: {e}"
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded")


def main():
    name = sys.argv[1]
    if name not in CASES:
        sys.exit(f"unknown case {name}; known: {', '.join(sorted(CASES))}")
    CASES[name]()
    print(f"ok {name}")
