"""Table service conformance through the official azure-data-tables SDK."""

import math
import os
import sys
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(__file__))
from common import ACCOUNT, KEY, case, main  # noqa: E402

from azure.core import MatchConditions  # noqa: E402
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential  # noqa: E402
from azure.core.exceptions import (  # noqa: E402
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import (  # noqa: E402
    EdmType,
    EntityProperty,
    TableClient,
    TableAccessPolicy,
    TableSasPermissions,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
    generate_account_sas,
    generate_table_sas,
)
from azure.data.tables import AccountSasPermissions, ResourceTypes  # noqa: E402


def endpoint():
    return os.environ["WEFT_TABLE_ENDPOINT"]


def expect_error(fn, status, code):
    """Runs fn, which must fail with the given HTTP status and error code
    (from the SDK's decoded error, else the x-ms-error-code header)."""
    try:
        fn()
    except HttpResponseError as e:
        assert e.status_code == status, f"want status {status}, got {e.status_code}: {e}"
        got = getattr(e, "error_code", None) or (e.response.headers.get("x-ms-error-code") if e.response else None)
        if code is not None:
            assert got == code, f"want error code {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded")


def service():
    cs = (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT};AccountKey={KEY};TableEndpoint={endpoint()};"
    )
    return TableServiceClient.from_connection_string(cs)


def names(tables):
    return [t.name for t in tables]


@case
def tables():
    svc = service()
    for n in ["orders", "Customers", "audit2024", "ordersArchive"]:
        svc.create_table(n)
    expect_error(lambda: svc.create_table("ORDERS"), 409, "TableAlreadyExists")
    assert names(svc.list_tables()) == ["audit2024", "Customers", "orders", "ordersArchive"], names(svc.list_tables())
    assert names(svc.query_tables("TableName eq 'orders'")) == ["orders"]
    assert names(svc.query_tables("TableName ge 'o' and TableName lt 'p'")) == ["orders", "ordersArchive"]
    pages = [names(p) for p in svc.list_tables(results_per_page=3).by_page()]
    assert pages == [["audit2024", "Customers", "orders"], ["ordersArchive"]], pages
    # create_table_if_not_exists returns the existing table
    svc.create_table_if_not_exists("orders")
    svc.delete_table("ordersArchive")
    assert "ordersArchive" not in names(svc.list_tables())
    expect_error(lambda: svc.get_table_client("ordersArchive").create_entity({"PartitionKey": "p", "RowKey": "r"}), 404, "TableNotFound")
    # Names that break Azure's rules: the service's error is turned into a
    # ValueError by the SDK, which it does only for InvalidResourceName /
    # OutOfRangeInput with Azure's messages.
    for bad in ["ab", "1abc", "has-dash", "a" * 64]:
        try:
            svc.create_table(bad)
            raise AssertionError(f"{bad} was accepted")
        except ValueError:
            pass
    # "tables" is reserved; the SDK's own name check lets it through
    expect_error(lambda: svc.create_table("Tables"), 400, "InvalidResourceName")
    assert names(svc.list_tables()) == ["audit2024", "Customers", "orders"]


@case
def entities():
    t = service().create_table("people")
    e = {"PartitionKey": "eu", "RowKey": "ada", "Name": "Ada", "Age": 36}
    created = t.create_entity(e)
    assert created["etag"].startswith("W/\"datetime'"), created
    expect_error(lambda: t.create_entity(e), 409, "EntityAlreadyExists")
    got = t.get_entity("eu", "ada")
    assert got["Name"] == "Ada" and got["Age"] == 36
    assert got.metadata["etag"] == created["etag"]
    assert got.metadata["timestamp"] is not None
    # replace drops properties not sent; merge keeps them
    t.update_entity({"PartitionKey": "eu", "RowKey": "ada", "Name": "Ada L."}, mode=UpdateMode.REPLACE)
    assert "Age" not in t.get_entity("eu", "ada")
    t.update_entity({"PartitionKey": "eu", "RowKey": "ada", "Age": 37}, mode=UpdateMode.MERGE)
    got = t.get_entity("eu", "ada")
    assert (got["Name"], got["Age"]) == ("Ada L.", 37)
    # update of a missing entity is 404; upsert creates it
    expect_error(lambda: t.update_entity({"PartitionKey": "eu", "RowKey": "bob", "A": 1}), 404, "ResourceNotFound")
    t.upsert_entity({"PartitionKey": "eu", "RowKey": "bob", "A": 1}, mode=UpdateMode.REPLACE)
    t.upsert_entity({"PartitionKey": "eu", "RowKey": "bob", "B": 2}, mode=UpdateMode.MERGE)
    assert {k: v for k, v in t.get_entity("eu", "bob").items()} == {"PartitionKey": "eu", "RowKey": "bob", "A": 1, "B": 2}
    t.upsert_entity({"PartitionKey": "eu", "RowKey": "bob", "C": 3}, mode=UpdateMode.REPLACE)
    assert "A" not in t.get_entity("eu", "bob")
    t.upsert_entity({"PartitionKey": "us", "RowKey": "cy", "C": 3}, mode=UpdateMode.MERGE)
    t.delete_entity("eu", "bob")
    expect_error(lambda: t.get_entity("eu", "bob"), 404, "ResourceNotFound")
    # deleting a missing entity: the SDK swallows the 404
    t.delete_entity("eu", "bob")
    # keys with quotes and non-ASCII characters
    t.create_entity({"PartitionKey": "o'neil", "RowKey": "zoë & co", "V": 1})
    assert t.get_entity("o'neil", "zoë & co")["V"] == 1
    # keys with characters Azure forbids
    expect_error(lambda: t.create_entity({"PartitionKey": "a/b", "RowKey": "r"}), 400, None)
    # a missing RowKey: PropertiesNeedValue, which the SDK turns into a ValueError
    try:
        t.create_entity({"PartitionKey": "p"})
        raise AssertionError("an entity without RowKey was accepted")
    except ValueError as e:
        assert "RowKey" in str(e), e


@case
def etag_mismatch_is_412():
    t = service().create_table("stock")
    t.create_entity({"PartitionKey": "p", "RowKey": "r", "Qty": 1})
    first = t.get_entity("p", "r")
    t.update_entity({"PartitionKey": "p", "RowKey": "r", "Qty": 2}, etag=first.metadata["etag"], match_condition=MatchConditions.IfNotModified)
    second = t.get_entity("p", "r")
    assert second.metadata["etag"] != first.metadata["etag"]
    stale = {"PartitionKey": "p", "RowKey": "r", "Qty": 99}
    for mode in (UpdateMode.REPLACE, UpdateMode.MERGE):
        expect_error(
            lambda: t.update_entity(stale, mode=mode, etag=first.metadata["etag"], match_condition=MatchConditions.IfNotModified),
            412,
            "UpdateConditionNotSatisfied",
        )
    expect_error(
        lambda: t.delete_entity("p", "r", etag=first.metadata["etag"], match_condition=MatchConditions.IfNotModified),
        412,
        "UpdateConditionNotSatisfied",
    )
    assert t.get_entity("p", "r")["Qty"] == 2
    t.delete_entity("p", "r", etag=second.metadata["etag"], match_condition=MatchConditions.IfNotModified)
    expect_error(lambda: t.get_entity("p", "r"), 404, "ResourceNotFound")


TYPED = {
    "PartitionKey": "types",
    "RowKey": "all",
    "Str": "héllo \"wörld\" ✓",
    "Empty": "",
    "I32": -2147483648,
    "I64": EntityProperty(9223372036854775807, EdmType.INT64),
    "SmallI64": EntityProperty(5, EdmType.INT64),
    "Dbl": 3.141592653589793,
    "WholeDbl": 2.0,
    "Tiny": 5e-324,
    "Inf": float("inf"),
    "NegInf": float("-inf"),
    "T": True,
    "F": False,
    "When": datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc),
    "Old": datetime(1601, 1, 1, tzinfo=timezone.utc),
    "Id": uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833"),
    "Bytes": b"\x00\x01\xfe\xff" * 100,
}


def check_typed(got):
    for k, want in TYPED.items():
        have = got[k]
        if isinstance(want, EntityProperty):
            assert isinstance(have, EntityProperty) and have.edm_type == EdmType.INT64 and have.value == want.value, (k, have)
        elif isinstance(want, float):
            assert isinstance(have, float) and (have == want), (k, have)
        elif isinstance(want, datetime):
            assert have == want, (k, have, want)
        else:
            assert type(have) is type(want) and have == want, (k, have, want)
    nan = got["NaN"]
    assert isinstance(nan, float) and math.isnan(nan)


@case
def typed_properties_round_trip():
    t = service().create_table("typed")
    e = dict(TYPED)
    e["NaN"] = float("nan")
    t.create_entity(e)
    check_typed(t.get_entity("types", "all"))
    (listed,) = list(t.list_entities())
    check_typed(listed)
    # and again after a merge that rewrites them all
    t.update_entity(listed, mode=UpdateMode.MERGE)
    check_typed(t.get_entity("types", "all"))


@case
def queries():
    t = service().create_table("catalog")
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    ids = [uuid.UUID(int=i) for i in range(20)]
    for i in range(20):
        t.create_entity({
            "PartitionKey": f"p{i % 2}",
            "RowKey": f"{i:02}",
            "N": i,
            "Big": EntityProperty(10**12 + i, EdmType.INT64),
            "Price": i * 1.5,
            "Even": i % 2 == 0,
            "At": base + timedelta(days=i),
            "Id": ids[i],
            "Raw": bytes([i]),
            "Name": f"item {i}",
        })

    def rows(f, **kw):
        return sorted(e["RowKey"] for e in t.query_entities(f, **kw))

    assert rows("PartitionKey eq 'p0'") == [f"{i:02}" for i in range(0, 20, 2)]
    assert rows("PartitionKey eq 'p1' and RowKey ge '15'") == ["15", "17", "19"]
    assert rows("N ge 17 or N lt 2") == ["00", "01", "17", "18", "19"]
    assert rows("not (N ne 3)") == ["03"]
    assert rows("(N eq 1 or N eq 2) and Even eq true") == ["02"]
    assert rows("Big gt 1000000000017L") == ["18", "19"]
    assert rows("Big gt 17") == [], "an Int64 property never matches an Int32 literal"
    assert rows("Price le 3.0") == ["00", "01", "02"]
    assert rows("Even eq false and N lt 5") == ["01", "03"]
    assert rows("At ge datetime'2020-01-19T00:00:00Z'") == ["18", "19"]
    assert rows(f"Id eq guid'{ids[7]}'") == ["07"]
    assert rows("Raw eq X'0a'") == ["10"]
    assert rows("Raw eq binary'0B'") == ["11"]
    assert rows("Name eq 'item 4'") == ["04"]
    assert rows("Name eq 4") == [], "a string property never matches a number"
    assert rows("Missing eq 1") == []
    assert rows("N eq @n and Name ne @name", parameters={"n": 5, "name": "x"}) == ["05"]
    assert rows("At lt @t", parameters={"t": base + timedelta(days=2)}) == ["00", "01"]
    # $select
    sel = list(t.query_entities("N eq 3", select=["N", "Name"]))
    assert len(sel) == 1 and dict(sel[0]) == {"N": 3, "Name": "item 3"}, dict(sel[0])
    # $top through results_per_page: first page only
    first = next(t.list_entities(results_per_page=4).by_page())
    assert [e["RowKey"] for e in first] == ["00", "02", "04", "06"]
    # malformed filters are 400 InvalidInput
    expect_error(lambda: list(t.query_entities("N eq")), 400, "InvalidInput")
    expect_error(lambda: list(t.query_entities("N eq 'x")), 400, "InvalidInput")


@case
def continuation_pages_through_everything_once():
    t = service().create_table("paging")
    want = []
    for p in range(5):
        ops = []
        for r in range(100):
            ops.append(("create", {"PartitionKey": f"part{p}", "RowKey": f"{r:04}", "V": r}))
            want.append((f"part{p}", f"{r:04}"))
        t.submit_transaction(ops)
    for per_page in (1000, 37, 100):
        pages = list(t.list_entities(results_per_page=per_page).by_page())
        seen = [(e["PartitionKey"], e["RowKey"]) for page in pages for e in page]
        assert seen == want, (per_page, len(seen))
        assert len(pages) == -(-len(want) // per_page), (per_page, len(pages))
    # a filtered query pages the same way
    pages = list(t.query_entities("V ge 50", results_per_page=33).by_page())
    seen = [(e["PartitionKey"], e["RowKey"]) for page in pages for e in page]
    assert seen == [k for k in want if int(k[1]) >= 50], len(seen)


@case
def batches():
    t = service().create_table("ledger")
    t.create_entity({"PartitionKey": "acct", "RowKey": "existing", "Bal": 1})
    t.create_entity({"PartitionKey": "acct", "RowKey": "gone", "Bal": 1})
    result = t.submit_transaction([
        ("create", {"PartitionKey": "acct", "RowKey": "a", "Bal": 10}),
        ("upsert", {"PartitionKey": "acct", "RowKey": "b", "Bal": 20}),
        ("upsert", {"PartitionKey": "acct", "RowKey": "c", "Bal": 30}, {"mode": UpdateMode.REPLACE}),
        ("update", {"PartitionKey": "acct", "RowKey": "existing", "Note": "x"}, {"mode": UpdateMode.MERGE}),
        ("delete", {"PartitionKey": "acct", "RowKey": "gone"}),
    ])
    assert len(result) == 5 and all("etag" in r for r in result[:4]), result
    rows = {e["RowKey"]: e for e in t.list_entities()}
    assert sorted(rows) == ["a", "b", "c", "existing"], sorted(rows)
    assert rows["existing"]["Bal"] == 1 and rows["existing"]["Note"] == "x"
    # one failing operation: nothing is applied, and the error names it
    try:
        t.submit_transaction([
            ("create", {"PartitionKey": "acct", "RowKey": "new1"}),
            ("update", {"PartitionKey": "acct", "RowKey": "a", "Bal": 0}),
            ("create", {"PartitionKey": "acct", "RowKey": "b"}),
        ])
        raise AssertionError("a batch with a failing operation succeeded")
    except TableTransactionError as e:
        assert e.error_code == "EntityAlreadyExists", e.error_code
        assert e.index == 2, e.index
    assert sorted(e["RowKey"] for e in t.list_entities()) == ["a", "b", "c", "existing"]
    assert t.get_entity("acct", "a")["Bal"] == 10, "the update before the failure was rolled back"
    # the same entity twice
    try:
        t.submit_transaction([
            ("upsert", {"PartitionKey": "acct", "RowKey": "a", "Bal": 5}),
            ("delete", {"PartitionKey": "acct", "RowKey": "a"}),
        ])
        raise AssertionError("a batch touching one entity twice succeeded")
    except TableTransactionError as e:
        assert (e.error_code, e.index) == ("InvalidDuplicateRow", 1), (e.error_code, e.index)
    assert t.get_entity("acct", "a")["Bal"] == 10
    # across partitions: the SDK refuses before sending (the service's
    # refusal is covered by the raw-HTTP test)
    try:
        t.submit_transaction([
            ("create", {"PartitionKey": "x", "RowKey": "1"}),
            ("create", {"PartitionKey": "y", "RowKey": "1"}),
        ])
        raise AssertionError("a batch across partitions succeeded")
    except ValueError:
        pass
    # more than 100 operations
    try:
        t.submit_transaction([("create", {"PartitionKey": "big", "RowKey": f"{i}"}) for i in range(101)])
        raise AssertionError("a batch of 101 operations succeeded")
    except (TableTransactionError, HttpResponseError) as e:
        assert (e.status_code, e.error_code) == (400, "InvalidInput"), (e.status_code, e.error_code)
    assert list(t.query_entities("PartitionKey eq 'big'")) == []
    t.submit_transaction([("create", {"PartitionKey": "big", "RowKey": f"{i}"}) for i in range(100)])
    assert len(list(t.query_entities("PartitionKey eq 'big'"))) == 100


@case
def shared_access_signatures():
    svc = service()
    t = svc.create_table("secured")
    for pk in ["a", "b", "c"]:
        t.create_entity({"PartitionKey": pk, "RowKey": "1", "V": pk})
    cred = AzureNamedKeyCredential(ACCOUNT, KEY)
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    # account SAS: read and list only
    sas = generate_account_sas(cred, ResourceTypes(service=True, container=True, object=True), AccountSasPermissions(read=True, list=True), expiry)
    ro = TableServiceClient(endpoint(), credential=AzureSasCredential(sas))
    assert "secured" in names(ro.list_tables())
    rt = ro.get_table_client("secured")
    assert rt.get_entity("a", "1")["V"] == "a"
    expect_error(lambda: rt.create_entity({"PartitionKey": "z", "RowKey": "1"}), 403, "AuthorizationPermissionMismatch")
    # table SAS limited to partition b
    sas = generate_table_sas(cred, "secured", permission=TableSasPermissions(read=True, add=True), expiry=expiry, start_pk="b", end_pk="b")
    tc = TableClient(endpoint(), "secured", credential=AzureSasCredential(sas))
    assert [e["PartitionKey"] for e in tc.list_entities()] == ["b"]
    tc.create_entity({"PartitionKey": "b", "RowKey": "2"})
    expect_error(lambda: tc.create_entity({"PartitionKey": "c", "RowKey": "2"}), 403, None)
    expect_error(lambda: tc.get_entity("a", "1"), 403, None)
    expect_error(lambda: tc.delete_entity("b", "1", etag="*", match_condition=MatchConditions.IfNotModified), 403, None)
    # a tampered token
    bad = sas.replace("sp=ra", "sp=raud")
    tb = TableClient(endpoint(), "secured", credential=AzureSasCredential(bad))
    expect_error(lambda: tb.delete_entity("b", "1"), 403, "AuthenticationFailed")
    # a token for another table
    other = TableClient(endpoint(), "other", credential=AzureSasCredential(sas))
    expect_error(lambda: list(other.list_entities()), 403, None)


@case
def access_policies():
    t = service().create_table("policies")
    t.create_entity({"PartitionKey": "p", "RowKey": "r"})
    expiry = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    t.set_table_access_policy({"readers": TableAccessPolicy(permission=TableSasPermissions(read=True), expiry=expiry)})
    got = t.get_table_access_policy()
    assert list(got) == ["readers"] and got["readers"].permission == "r", got
    cred = AzureNamedKeyCredential(ACCOUNT, KEY)
    sas = generate_table_sas(cred, "policies", policy_id="readers")
    tc = TableClient(endpoint(), "policies", credential=AzureSasCredential(sas))
    assert [e["RowKey"] for e in tc.list_entities()] == ["r"]
    expect_error(lambda: tc.create_entity({"PartitionKey": "p", "RowKey": "s"}), 403, None)
    # removing the policy revokes the token
    t.set_table_access_policy({})
    assert t.get_table_access_policy() == {}
    expect_error(lambda: list(tc.list_entities()), 403, "AuthenticationFailed")


@case
def bad_input_stores_nothing():
    t = service().create_table("limits")
    too_many = {"PartitionKey": "p", "RowKey": "many"}
    too_many.update({f"P{i}": i for i in range(253)})
    expect_error(lambda: t.create_entity(too_many), 400, "TooManyProperties")
    big = {"PartitionKey": "p", "RowKey": "big"}
    big.update({f"S{i}": "x" * 30000 for i in range(20)})
    expect_error(lambda: t.create_entity(big), 400, "EntityTooLarge")
    expect_error(lambda: t.create_entity({"PartitionKey": "p", "RowKey": "n", "bad-name": 1}), 400, "PropertyNameInvalid")
    expect_error(lambda: t.create_entity({"PartitionKey": "p", "RowKey": "v", "S": "x" * 40000}), 400, "PropertyValueTooLarge")
    expect_error(lambda: t.create_entity({"PartitionKey": "p" * 600, "RowKey": "k"}), 400, "KeyValueTooLarge")
    assert list(t.list_entities()) == []
    ok = {"PartitionKey": "p", "RowKey": "max"}
    ok.update({f"P{i}": i for i in range(252)})
    t.create_entity(ok)
    # a merge that would take the entity over 255 properties is refused
    expect_error(lambda: t.update_entity({"PartitionKey": "p", "RowKey": "max", "Extra": 1}, mode=UpdateMode.MERGE), 400, "TooManyProperties")
    assert len(t.get_entity("p", "max")) == 254
    # merges that would take an entity past 1 MiB are refused, alone, as an
    # upsert and inside a batch, and the entity stays as it was
    grown = {"PartitionKey": "p", "RowKey": "grown"}
    grown.update({f"S{i}": "x" * 30000 for i in range(15)})
    t.create_entity(grown)
    before = t.get_entity("p", "grown")
    more = {"PartitionKey": "p", "RowKey": "grown"}
    more.update({f"T{i}": "y" * 30000 for i in range(5)})
    expect_error(lambda: t.update_entity(more, mode=UpdateMode.MERGE), 400, "EntityTooLarge")
    expect_error(lambda: t.upsert_entity(more, mode=UpdateMode.MERGE), 400, "EntityTooLarge")
    try:
        t.submit_transaction([
            ("create", {"PartitionKey": "p", "RowKey": "side"}),
            ("upsert", more, {"mode": UpdateMode.MERGE}),
        ])
        raise AssertionError("a batch merging an entity past 1 MiB succeeded")
    except TableTransactionError as e:
        assert (e.status_code, e.error_code, e.index) == (400, "EntityTooLarge", 1), (e.status_code, e.error_code, e.index)
    after = t.get_entity("p", "grown")
    assert after.metadata["etag"] == before.metadata["etag"] and sorted(after) == sorted(before)
    assert sorted(e["RowKey"] for e in t.list_entities()) == ["grown", "max"]


@case
def durability_write():
    t = service().create_table("durable")
    t.create_entity({"PartitionKey": "p", "RowKey": "r", "V": EntityProperty(7, EdmType.INT64)})
    t.submit_transaction([("create", {"PartitionKey": "p", "RowKey": f"b{i}"}) for i in range(10)])


@case
def durability_read():
    t = service().get_table_client("durable")
    assert t.get_entity("p", "r")["V"].value == 7
    assert len(list(t.list_entities())) == 11


if __name__ == "__main__":
    main()
