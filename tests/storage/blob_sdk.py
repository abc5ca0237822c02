"""Blob service conformance through the official azure-storage-blob SDK."""

import hashlib
import os
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(__file__))
from common import case, connection_string, endpoint, expect_error, main  # noqa: E402

from azure.core import MatchConditions  # noqa: E402
from azure.storage.blob import (  # noqa: E402
    AccessPolicy,
    BlobBlock,
    BlobClient,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
)


def service():
    return BlobServiceClient.from_connection_string(connection_string())


@case
def containers():
    svc = service()
    # a_b and a1 sort differently in the service's header order than
    # ordinally; the SDK signs in the service's order
    c = svc.create_container("alpha", metadata={"owner": "weft", "tier": "one", "a_b": "x", "a1": "y"})
    expect_error(lambda: svc.create_container("alpha"), 409, "ContainerAlreadyExists")
    props = c.get_container_properties()
    assert props.metadata == {"owner": "weft", "tier": "one", "a_b": "x", "a1": "y"}, props.metadata
    assert props.etag.startswith('"0x'), props.etag
    c.set_container_metadata({"changed": "yes"})
    assert c.get_container_properties().metadata == {"changed": "yes"}
    for n in ["beta1", "beta2", "beta3", "gamma"]:
        svc.create_container(n)
    names = [x.name for x in svc.list_containers(name_starts_with="beta")]
    assert names == ["beta1", "beta2", "beta3"], names
    listed = {x.name: x.metadata for x in svc.list_containers(include_metadata=True)}
    assert listed["alpha"] == {"changed": "yes"}, listed
    pages = [[x.name for x in p] for p in svc.list_containers(results_per_page=2).by_page()]
    assert pages == [["alpha", "beta1"], ["beta2", "beta3"], ["gamma"]], pages
    c.delete_container()
    expect_error(c.get_container_properties, 404, "ContainerNotFound")
    expect_error(c.delete_container, 404, "ContainerNotFound")


@case
def missing_container():
    c = service().get_container_client("nosuch")
    expect_error(lambda: c.upload_blob("b", b"x"), 404, "ContainerNotFound")
    expect_error(lambda: c.download_blob("b").readall(), 404, "ContainerNotFound")
    expect_error(lambda: list(c.list_blobs()), 404, "ContainerNotFound")
    svc = service()
    svc.create_container("present")
    expect_error(lambda: svc.get_blob_client("present", "nope").download_blob(), 404, "BlobNotFound")


@case
def blob_round_trip():
    c = service().create_container("roundtrip")
    settings = ContentSettings(
        content_type="text/plain; charset=utf-8",
        content_language="en",
        cache_control="max-age=60",
        content_disposition="attachment",
    )
    data = "héllo wörld".encode()
    b = c.get_blob_client("dir/a file.txt").upload_blob(data, metadata={"k1": "v1", "k2": "v 2"}, content_settings=settings)
    assert c.download_blob("dir/a file.txt").readall() == data
    p = c.get_blob_client("dir/a file.txt").get_blob_properties()
    assert p.size == len(data)
    assert p.metadata == {"k1": "v1", "k2": "v 2"}, p.metadata
    assert p.content_settings.content_type == "text/plain; charset=utf-8"
    assert p.content_settings.cache_control == "max-age=60"
    assert p.content_settings.content_language == "en"
    assert p.content_settings.content_md5 == hashlib.md5(data).digest()
    assert p.blob_type == "BlockBlob"
    assert p.etag == b["etag"]
    bc = c.get_blob_client("dir/a file.txt")
    r = bc.set_blob_metadata({"only": "this"})
    assert r["etag"] != p.etag
    assert bc.get_blob_properties().metadata == {"only": "this"}
    bc.set_http_headers(ContentSettings(content_type="application/json"))
    p2 = bc.get_blob_properties()
    assert p2.content_settings.content_type == "application/json"
    assert p2.content_settings.cache_control is None, "unset properties are cleared"
    c.upload_blob("empty", b"")
    assert c.download_blob("empty").readall() == b""
    c.upload_blob("dir/a file.txt", b"replaced", overwrite=True)
    assert c.download_blob("dir/a file.txt").readall() == b"replaced"
    expect_error(lambda: c.upload_blob("empty", b"again"), 409, "BlobAlreadyExists")
    bc.delete_blob()
    expect_error(bc.get_blob_properties, 404, None)
    expect_error(bc.delete_blob, 404, "BlobNotFound")


@case
def etag_conditions():
    c = service().create_container("cond")
    bc = c.get_blob_client("b")
    stale = bc.upload_blob(b"one")["etag"]
    bc.upload_blob(b"two", overwrite=True)
    current = bc.get_blob_properties().etag
    assert current != stale
    expect_error(
        lambda: bc.upload_blob(b"three", overwrite=True, etag=stale, match_condition=MatchConditions.IfNotModified),
        412, "ConditionNotMet",
    )
    assert bc.download_blob().readall() == b"two", "a failed conditional write changes nothing"
    bc.upload_blob(b"three", overwrite=True, etag=current, match_condition=MatchConditions.IfNotModified)
    assert bc.download_blob().readall() == b"three"
    now = bc.get_blob_properties()
    # a read whose condition fails is 304 (with Azure's error code header)
    expect_error(lambda: bc.download_blob(etag=now.etag, match_condition=MatchConditions.IfModified), 304, "ConditionNotMet")
    expect_error(lambda: bc.get_blob_properties(if_modified_since=now.last_modified), 304, None)
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    expect_error(lambda: bc.set_blob_metadata({"a": "b"}, if_unmodified_since=past), 412, "ConditionNotMet")
    bc.set_blob_metadata({"a": "b"}, if_unmodified_since=future)
    expect_error(lambda: bc.delete_blob(etag=stale, match_condition=MatchConditions.IfNotModified), 412, "ConditionNotMet")
    bc.delete_blob(etag=bc.get_blob_properties().etag, match_condition=MatchConditions.IfNotModified)


@case
def ranges():
    c = service().create_container("ranges")
    data = bytes(range(256)) * 4
    c.upload_blob("r", data)
    assert c.download_blob("r", offset=10, length=20).readall() == data[10:30]
    assert c.download_blob("r", offset=1000).readall() == data[1000:]
    assert c.download_blob("r", offset=0, length=5000).readall() == data
    expect_error(lambda: c.download_blob("r", offset=1024, length=10).readall(), 416, "InvalidRange")


@case
def listing():
    c = service().create_container("listing")
    names = sorted(
        [f"a/{i:02}.txt" for i in range(10)]
        + [f"b/c/{i}.bin" for i in range(5)]
        + ["top1", "top2", "a-sibling"]
        + [f"z/{i}" for i in range(7)]
    )
    for n in names:
        c.upload_blob(n, n.encode(), metadata={"name": n.replace("/", "_").replace(".", "_").replace("-", "_")})
    assert [b.name for b in c.list_blobs()] == names
    assert [b.name for b in c.list_blobs(name_starts_with="a/")] == [n for n in names if n.startswith("a/")]
    # the SDK puts a page's prefixes before its blobs
    top = [b.name for b in c.walk_blobs(delimiter="/")]
    assert top == ["a/", "b/", "z/", "a-sibling", "top1", "top2"], top
    under_b = [b.name for b in c.walk_blobs(name_starts_with="b/", delimiter="/")]
    assert under_b == ["b/c/"], under_b
    seen = []
    pages = 0
    for page in c.list_blobs(results_per_page=4).by_page():
        batch = [b.name for b in page]
        assert 1 <= len(batch) <= 4
        seen += batch
        pages += 1
    assert seen == names, "paging returns every blob exactly once, in order"
    assert pages == (len(names) + 3) // 4
    md = {b.name: b.metadata for b in c.list_blobs(include=["metadata"])}
    assert md["top1"] == {"name": "top1"}, md["top1"]
    plain = next(iter(c.list_blobs()))
    assert not plain.metadata, "metadata only with include=metadata"
    # hierarchical paging: prefixes and blobs share the page size
    seen = []
    for page in c.walk_blobs(delimiter="/", results_per_page=2).by_page():
        seen += [b.name for b in page]
    assert sorted(seen) == sorted(top), seen


@case
def block_lists():
    c = service().create_container("blocks")
    bc = c.get_blob_client("assembled")
    ids = ["YmxvY2stMDA=", "YmxvY2stMDE=", "YmxvY2stMDI="]
    parts = [b"first-", b"second-", b"third"]
    for i, p in zip(ids, parts):
        bc.stage_block(i, p)
    committed, uncommitted = bc.get_block_list("all")
    assert committed == []
    assert sorted(b.id for b in uncommitted) == sorted(ids)
    bc.commit_block_list([BlobBlock(ids[2]), BlobBlock(ids[0])], metadata={"m": "1"})
    assert bc.download_blob().readall() == b"third" + b"first-"
    committed, uncommitted = bc.get_block_list("all")
    assert [(b.id, b.size) for b in committed] == [(ids[2], 5), (ids[0], 6)]
    assert uncommitted == [], "uncommitted blocks are discarded at commit"
    assert bc.get_blob_properties().metadata == {"m": "1"}
    # re-commit an already committed block, plus a new one
    new_id = "YmxvY2stMDM="
    bc.stage_block(new_id, b"!")
    bc.commit_block_list([BlobBlock(ids[0]), BlobBlock(new_id)])
    assert bc.download_blob().readall() == b"first-!"
    expect_error(lambda: bc.commit_block_list([BlobBlock("bm9wZS1ub3BlMA==")]), 400, "InvalidBlockList")
    assert bc.download_blob().readall() == b"first-!", "a failed commit changes nothing"
    # the SDK's chunked upload path (Put Block + Put Block List)
    data = os.urandom(3 * 1024 * 1024 + 17)
    chunked = BlobClient.from_connection_string(
        connection_string(), "blocks", "chunked", max_single_put_size=1024 * 1024, max_block_size=1024 * 1024
    )
    chunked.upload_blob(data)
    assert len(chunked.get_block_list("committed")[0]) == 4
    assert chunked.download_blob(max_concurrency=2).readall() == data


@case
def public_access():
    svc = service()
    pub = svc.create_container("pubc", public_access="container")
    blobonly = svc.create_container("pubb", public_access="blob")
    priv = svc.create_container("priv")
    for c in (pub, blobonly, priv):
        c.upload_blob("x", b"data")
    anon = lambda name: ContainerClient(f"{endpoint()}", name)  # noqa: E731
    assert anon("pubc").download_blob("x").readall() == b"data"
    assert [b.name for b in anon("pubc").list_blobs()] == ["x"]
    assert anon("pubb").download_blob("x").readall() == b"data"
    expect_error(lambda: list(anon("pubb").list_blobs()), 404, "ResourceNotFound")
    expect_error(lambda: anon("priv").download_blob("x").readall(), 404, "ResourceNotFound")
    expect_error(lambda: anon("pubc").upload_blob("y", b"no"), 401, "NoAuthenticationInformation")
    policy = AccessPolicy(
        permission=ContainerSasPermissions(read=True, list=True),
        start=datetime(2026, 1, 1, tzinfo=timezone.utc),
        expiry=datetime(2027, 1, 1, tzinfo=timezone.utc),
    )
    priv.set_container_access_policy({"readers": policy}, public_access="blob")
    acl = priv.get_container_access_policy()
    assert acl["public_access"] == "blob", acl
    ids = acl["signed_identifiers"]
    assert [i.id for i in ids] == ["readers"]
    assert ids[0].access_policy.permission == "rl", ids[0].access_policy.permission
    assert anon("priv").download_blob("x").readall() == b"data"


@case
def large_blob():
    size = int(os.environ.get("WEFT_LARGE_BLOB_MIB", "64")) * 1024 * 1024
    c = service().create_container("large")
    chunk = os.urandom(1024 * 1024)
    want = hashlib.sha256()
    for _ in range(size // len(chunk)):
        want.update(chunk)

    def gen():
        for _ in range(size // len(chunk)):
            yield chunk

    c.upload_blob("big", gen(), length=size)
    p = c.get_blob_client("big").get_blob_properties()
    assert p.size == size
    got = hashlib.sha256()
    for part in c.download_blob("big").chunks():
        got.update(part)
    assert got.hexdigest() == want.hexdigest()


@case
def durability_write():
    c = service().create_container("durable")
    c.upload_blob("one", b"acknowledged", metadata={"v": "1"})
    bc = c.get_blob_client("two")
    bc.stage_block("YQ==", b"blocks ")
    bc.stage_block("Yg==", b"survive")
    bc.commit_block_list([BlobBlock("YQ=="), BlobBlock("Yg==")])


@case
def durability_read():
    c = service().get_container_client("durable")
    assert c.download_blob("one").readall() == b"acknowledged"
    assert c.get_blob_client("one").get_blob_properties().metadata == {"v": "1"}
    assert c.download_blob("two").readall() == b"blocks survive"
    assert [b.name for b in c.list_blobs()] == ["one", "two"]


@case
def sas_tokens():
    from azure.storage.blob import (
        AccountSasPermissions,
        BlobSasPermissions,
        ResourceTypes,
        generate_account_sas,
        generate_blob_sas,
        generate_container_sas,
    )
    from common import ACCOUNT, KEY

    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    # account SAS: full object and container rights
    token = generate_account_sas(
        ACCOUNT, KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, create=True, delete=True), expiry=soon,
    )
    svc = BlobServiceClient(endpoint(), credential=token)
    c = svc.create_container("sas")
    c.upload_blob("b.txt", b"via account sas")
    assert [x.name for x in svc.list_containers()] == ["sas"]
    assert c.download_blob("b.txt").readall() == b"via account sas"
    # read-only account SAS cannot write
    ro = generate_account_sas(ACCOUNT, KEY, ResourceTypes(object=True), AccountSasPermissions(read=True), expiry=soon)
    ro_c = BlobServiceClient(endpoint(), credential=ro).get_container_client("sas")
    assert ro_c.download_blob("b.txt").readall() == b"via account sas"
    expect_error(lambda: ro_c.upload_blob("x", b"no"), 403, "AuthorizationPermissionMismatch")
    expect_error(lambda: list(ro_c.list_blobs()), 403, "AuthorizationResourceTypeMismatch")
    # blob SAS: only that blob, only read; content type override
    blob_sas = generate_blob_sas(ACCOUNT, "sas", "b.txt", account_key=KEY, permission=BlobSasPermissions(read=True),
                                 expiry=soon, content_type="text/x-override")
    one = BlobClient.from_blob_url(f"{endpoint()}/sas/b.txt?{blob_sas}")
    d = one.download_blob()
    assert d.readall() == b"via account sas"
    assert d.properties.content_settings.content_type == "text/x-override"
    expect_error(lambda: one.upload_blob(b"no", overwrite=True), 403, "AuthorizationPermissionMismatch")
    other = BlobClient.from_blob_url(f"{endpoint()}/sas/other.txt?{blob_sas}")
    expect_error(lambda: other.download_blob(), 403, "AuthenticationFailed")
    # expired and tampered tokens
    expired = generate_blob_sas(ACCOUNT, "sas", "b.txt", account_key=KEY, permission=BlobSasPermissions(read=True),
                                start=past - timedelta(hours=1), expiry=past)
    expect_error(lambda: BlobClient.from_blob_url(f"{endpoint()}/sas/b.txt?{expired}").download_blob(), 403, "AuthenticationFailed")
    tampered = blob_sas.replace("sp=r", "sp=rw")
    expect_error(lambda: BlobClient.from_blob_url(f"{endpoint()}/sas/b.txt?{tampered}").download_blob(), 403, "AuthenticationFailed")
    # container SAS bound to a stored access policy
    admin = service().get_container_client("sas")
    admin.set_container_access_policy({"listers": AccessPolicy(permission=ContainerSasPermissions(read=True, list=True), expiry=soon)})
    policy_sas = generate_container_sas(ACCOUNT, "sas", account_key=KEY, policy_id="listers")
    pc = ContainerClient.from_container_url(f"{endpoint()}/sas?{policy_sas}")
    assert [b.name for b in pc.list_blobs()] == ["b.txt"]
    expect_error(lambda: pc.upload_blob("y", b"no"), 403, "AuthorizationPermissionMismatch")


@case
def copy_blob():
    c = service().create_container("copies")
    src = c.get_blob_client("src")
    src.upload_blob(b"original bytes", metadata={"from": "src"}, content_settings=ContentSettings(content_type="text/plain"))
    dst = c.get_blob_client("dst")
    r = dst.start_copy_from_url(src.url)
    assert r["copy_status"] == "success", r
    p = dst.get_blob_properties()
    assert p.copy.status == "success" and p.copy.id == r["copy_id"], p.copy
    assert p.metadata == {"from": "src"}
    assert p.content_settings.content_type == "text/plain"
    assert dst.download_blob().readall() == b"original bytes"
    other = c.get_blob_client("dst2")
    other.start_copy_from_url(src.url, metadata={"own": "meta"})
    assert other.get_blob_properties().metadata == {"own": "meta"}
    # the copy shares data with the source: rewriting and deleting the
    # source must leave the copies intact
    src.upload_blob(b"rewritten", overwrite=True)
    assert dst.download_blob().readall() == b"original bytes"
    src.delete_blob()
    assert other.download_blob().readall() == b"original bytes"
    expect_error(lambda: c.get_blob_client("x").start_copy_from_url(src.url), 404, "CannotVerifyCopySource")
    # Put Blob From URL
    put = c.get_blob_client("fromurl")
    put.upload_blob_from_url(dst.url)
    assert put.download_blob().readall() == b"original bytes"


@case
def append_blobs():
    from azure.storage.blob import BlobType

    c = service().create_container("appends")
    a = c.get_blob_client("log")
    a.create_append_blob(metadata={"kind": "log"})
    offsets = [a.append_block(part)["blob_append_offset"] for part in (b"one ", b"two ", b"three")]
    assert offsets == ["0", "4", "8"], offsets
    assert a.download_blob().readall() == b"one two three"
    p = a.get_blob_properties()
    assert p.blob_type == BlobType.AppendBlob and p.size == 13 and p.metadata == {"kind": "log"}
    expect_error(lambda: a.append_block(b"x", appendpos_condition=5), 412, "AppendPositionConditionNotMet")
    expect_error(lambda: a.append_block(b"xx", maxsize_condition=14), 412, "MaxBlobSizeConditionNotMet")
    a.append_block(b"!", appendpos_condition=13, maxsize_condition=14)
    assert a.download_blob(offset=8).readall() == b"three!"
    expect_error(lambda: a.stage_block("YQ==", b"x"), 409, "InvalidBlobType")
    c.upload_blob("block", b"b")
    expect_error(lambda: c.get_blob_client("block").append_block(b"x"), 409, "InvalidBlobType")
    expect_error(lambda: c.get_blob_client("missing").append_block(b"x"), 404, "BlobNotFound")
    c.upload_blob("sdk-append", b"written by upload_blob", blob_type=BlobType.AppendBlob)
    assert c.download_blob("sdk-append").readall() == b"written by upload_blob"


@case
def leases():
    import uuid

    c = service().create_container("leases")
    bc = c.get_blob_client("b")
    bc.upload_blob(b"v1")
    lease = bc.acquire_lease(lease_duration=-1)
    p = bc.get_blob_properties()
    assert (p.lease.state, p.lease.status, p.lease.duration) == ("leased", "locked", "infinite"), p.lease
    expect_error(lambda: bc.upload_blob(b"v2", overwrite=True), 412, "LeaseIdMissing")
    expect_error(lambda: bc.upload_blob(b"v2", overwrite=True, lease=str(uuid.uuid4())), 412, "LeaseIdMismatchWithBlobOperation")
    expect_error(lambda: bc.delete_blob(), 412, "LeaseIdMissing")
    expect_error(lambda: bc.stage_block("YQ==", b"x"), 412, "LeaseIdMissing")
    bc.upload_blob(b"v2", overwrite=True, lease=lease)
    assert bc.download_blob().readall() == b"v2", "reads need no lease"
    assert bc.get_blob_properties().lease.state == "leased", "an overwrite keeps the lease"
    expect_error(lambda: bc.acquire_lease(), 409, "LeaseAlreadyPresent")
    new_id = str(uuid.uuid4())
    lease.change(new_id)
    assert lease.id == new_id
    bc.set_blob_metadata({"a": "b"}, lease=lease)
    lease.release()
    assert bc.get_blob_properties().lease.state == "available"
    expect_error(lambda: bc.set_blob_metadata({"a": "c"}, lease=new_id), 412, "LeaseNotPresentWithBlobOperation")
    fixed = bc.acquire_lease(lease_duration=15)
    assert bc.get_blob_properties().lease.duration == "fixed"
    fixed.renew()
    assert fixed.break_lease(lease_break_period=0) == 0
    assert bc.get_blob_properties().lease.state == "broken"
    bc.delete_blob()
    cl = c.acquire_lease()
    assert c.get_container_properties().lease.state == "leased"
    listed = list(service().list_containers(name_starts_with="leases"))[0]
    assert listed.lease.state == "leased", listed.lease
    expect_error(lambda: c.delete_container(), 412, "LeaseIdMissing")
    c.delete_container(lease=cl)


@case
def snapshots():
    c = service().create_container("snaps")
    bc = c.get_blob_client("b")
    bc.upload_blob(b"version one", metadata={"v": "1"})
    s1 = bc.create_snapshot()["snapshot"]
    bc.upload_blob(b"version two", overwrite=True, metadata={"v": "2"})
    s2 = bc.create_snapshot(metadata={"custom": "yes"})["snapshot"]
    assert s1 < s2, (s1, s2)
    bc.upload_blob(b"three", overwrite=True)
    old = c.get_blob_client("b", snapshot=s1)
    assert old.download_blob().readall() == b"version one"
    assert old.download_blob(offset=8, length=3).readall() == b"one"
    assert old.get_blob_properties().metadata == {"v": "1"}
    assert c.get_blob_client("b", snapshot=s2).get_blob_properties().metadata == {"custom": "yes"}
    assert bc.download_blob().readall() == b"three"
    listed = [(b.name, b.snapshot) for b in c.list_blobs(include=["snapshots"])]
    assert listed == [("b", s1), ("b", s2), ("b", None)], listed
    assert [b.name for b in c.list_blobs()] == ["b"]
    expect_error(lambda: bc.delete_blob(), 409, "SnapshotsPresent")
    old.delete_blob()
    expect_error(lambda: old.download_blob(), 404, "BlobNotFound")
    bc.delete_blob(delete_snapshots="only")
    assert bc.download_blob().readall() == b"three"
    assert [b.snapshot for b in c.list_blobs(include=["snapshots"])] == [None]
    bc.create_snapshot()
    bc.delete_blob(delete_snapshots="include")
    assert list(c.list_blobs(include=["snapshots"])) == []


@case
def metadata_case():
    # Azure keeps the case metadata names were created with and compares
    # them case-insensitively
    svc = service()
    meta = {"Owner": "x", "camelCase": "y", "lower": "z"}
    c = svc.create_container("cased", metadata=meta)
    assert c.get_container_properties().metadata == meta, c.get_container_properties().metadata
    listed = {x.name: x.metadata for x in svc.list_containers(include_metadata=True)}
    assert listed["cased"] == meta, listed
    bc = c.get_blob_client("b")
    # a body that looks like metadata headers stays as it is
    body = b"\r\nx-ms-meta-Evil: 1\r\n\r\nHTTP/1.1 200 OK\r\nx-ms-meta-owner: body\r\n"
    bc.upload_blob(body, metadata=meta)
    assert bc.get_blob_properties().metadata == meta, bc.get_blob_properties().metadata
    d = bc.download_blob()
    assert d.properties.metadata == meta, d.properties.metadata
    assert d.readall() == body
    blobs = {b.name: b.metadata for b in c.list_blobs(include=["metadata"])}
    assert blobs == {"b": meta}, blobs
    bc.set_blob_metadata({"NewName": "1", "ALLCAPS": "2"})
    assert bc.get_blob_properties().metadata == {"NewName": "1", "ALLCAPS": "2"}
    snap = bc.create_snapshot(metadata={"SnapShot": "s"})["snapshot"]
    assert c.get_blob_client("b", snapshot=snap).get_blob_properties().metadata == {"SnapShot": "s"}
    blocks = c.get_blob_client("blocks")
    blocks.stage_block("YmxvY2sx", b"one")
    blocks.commit_block_list([BlobBlock("YmxvY2sx")], metadata={"BlockList": "yes"})
    assert blocks.get_blob_properties().metadata == {"BlockList": "yes"}
    c.set_container_metadata({"Changed": "Yes"})
    assert c.get_container_properties().metadata == {"Changed": "Yes"}


if __name__ == "__main__":
    main()
