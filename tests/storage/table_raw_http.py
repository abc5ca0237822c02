"""Table service raw-HTTP conformance: SharedKey / SharedKeyLite signatures
computed here by hand from the REST reference (the table service's own
strings to sign), JSON error bodies, versions, response formats, and a
batch the SDK would refuse to send."""

import base64
import hashlib
import hmac
import json
import os
import sys
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.dirname(__file__))
from common import ACCOUNT, KEY, case, main  # noqa: E402

import requests  # noqa: E402

VERSION = "2019-02-02"


def endpoint():
    return os.environ["WEFT_TABLE_ENDPOINT"]


def string_to_sign(method, url, headers, lite=False):
    """Table SharedKey: VERB, Content-MD5, Content-Type, date, resource;
    SharedKeyLite: date, resource. The date is x-ms-date; the resource is
    /account + path (the account twice, path-style) + ?comp= if any."""
    h = {k.lower(): v for k, v in headers.items()}
    parts = urlsplit(url)
    resource = f"/{ACCOUNT}{parts.path}"
    comp = dict(parse_qsl(parts.query)).get("comp")
    if comp:
        resource += f"?comp={comp}"
    date = h.get("x-ms-date", h.get("date", ""))
    if lite:
        return f"{date}\n{resource}"
    return "\n".join([method, h.get("content-md5", ""), h.get("content-type", ""), date, resource])


def send(method, path, body=b"", headers=None, lite=False, tamper=False, version=VERSION, key=KEY):
    url = endpoint() + path
    h = {
        "x-ms-date": formatdate(usegmt=True),
        "Accept": "application/json;odata=minimalmetadata",
        "DataServiceVersion": "3.0",
    }
    if version:
        h["x-ms-version"] = version
    if body:
        h.setdefault("Content-Type", "application/json")
    h.update(headers or {})
    sts = string_to_sign(method, url, h, lite)
    mac = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
    if tamper:
        mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    h["Authorization"] = f"{'SharedKeyLite' if lite else 'SharedKey'} {ACCOUNT}:{mac}"
    return requests.request(method, url, data=body, headers=h)


def assert_json_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("x-ms-error-code") == code, r.headers
    err = r.json()["odata.error"]
    assert err["code"] == code, err
    assert err["message"]["lang"] == "en-US"
    assert "RequestId:" + r.headers["x-ms-request-id"] in err["message"]["value"], err
    assert r.headers["Content-Type"].startswith("application/json"), r.headers


def create(name):
    r = send("POST", "/Tables", json.dumps({"TableName": name}).encode())
    assert r.status_code == 201, r.text
    return r


@case
def signatures():
    r = create("signed")
    body = r.json()
    assert body["TableName"] == "signed" and body["odata.metadata"].endswith("/$metadata#Tables/@Element"), body
    r = send("GET", "/Tables", lite=True)
    assert r.status_code == 200, ("SharedKeyLite", r.text)
    assert [t["TableName"] for t in r.json()["value"]] == ["signed"]
    r = send("POST", "/signed", json.dumps({"PartitionKey": "p", "RowKey": "r"}).encode(), lite=True)
    assert r.status_code == 201, r.text
    r = send("GET", "/signed(PartitionKey='p',RowKey='r')")
    assert r.status_code == 200 and r.json()["RowKey"] == "r", r.text
    # tampered: 403 AuthenticationFailed in the JSON error format
    r = send("GET", "/Tables", tamper=True)
    assert_json_error(r, 403, "AuthenticationFailed")
    r = send("GET", "/Tables", key=base64.b64encode(b"k" * 64).decode())
    assert_json_error(r, 403, "AuthenticationFailed")
    # a blob-style signature (canonicalized headers) is not a table signature
    url = endpoint() + "/Tables"
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION}
    sts = "GET\n\n\n" + h["x-ms-date"] + "\n" + f"x-ms-date:{h['x-ms-date']}\nx-ms-version:{VERSION}\n/{ACCOUNT}/{ACCOUNT}/Tables"
    mac = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest()).decode()
    h["Authorization"] = f"SharedKey {ACCOUNT}:{mac}"
    assert_json_error(requests.get(url, headers=h), 403, "AuthenticationFailed")
    # no credentials at all
    r = requests.get(endpoint() + "/Tables", headers={"x-ms-version": VERSION})
    assert r.status_code in (401, 403), r.status_code


@case
def versions():
    for v in ["2099-12-31", "2019-02-02", "2025-11-05", None]:
        r = send("GET", "/Tables", version=v)
        assert r.status_code == 200, (v, r.text)
        if v:
            assert r.headers["x-ms-version"] == v
    r = send("GET", "/Tables", version="2017-04-17")
    assert_json_error(r, 400, "InvalidHeaderValue")


@case
def formats():
    create("fmt")
    entity = {
        "PartitionKey": "p",
        "RowKey": "r",
        "Big@odata.type": "Edm.Int64",
        "Big": "12345678901",
        "When@odata.type": "Edm.DateTime",
        "When": "2020-05-06T07:08:09.1234567Z",
        "N": 5,
        "D": 1.5,
    }
    r = send("POST", "/fmt", json.dumps(entity).encode(), headers={"Prefer": "return-no-content"})
    assert r.status_code == 204 and r.headers["Preference-Applied"] == "return-no-content", r.text
    etag = r.headers["ETag"]
    assert etag.startswith("W/\"datetime'") and "%3A" in etag, etag
    path = "/fmt(PartitionKey='p',RowKey='r')"
    r = send("GET", path, headers={"Accept": "application/json;odata=nometadata"})
    body = r.json()
    assert r.headers["Content-Type"].startswith("application/json;odata=nometadata"), r.headers
    assert not any(k.startswith("odata.") or "@odata" in k for k in body), body
    assert body["Big"] == "12345678901" and body["N"] == 5, body
    r = send("GET", path)
    body = r.json()
    assert body["odata.etag"] == etag == r.headers["ETag"], (body, etag)
    assert body["Big@odata.type"] == "Edm.Int64" and body["When@odata.type"] == "Edm.DateTime", body
    assert body["When"] == "2020-05-06T07:08:09.1234567Z", body
    assert "N@odata.type" not in body and "Timestamp@odata.type" not in body, body
    r = send("GET", path + "?$format=application/json;odata=fullmetadata")
    body = r.json()
    assert body["odata.type"] == f"{ACCOUNT}.fmt", body
    assert body["odata.editLink"] == "fmt(PartitionKey='p',RowKey='r')", body
    assert body["odata.id"].endswith("/fmt(PartitionKey='p',RowKey='r')"), body
    assert body["Timestamp@odata.type"] == "Edm.DateTime", body
    # a query answers with value[] and the table's metadata link
    r = send("GET", "/fmt()?$filter=" + requests.utils.quote("Big eq 12345678901L") + "&$select=Big")
    body = r.json()
    assert body["odata.metadata"].endswith("/$metadata#fmt"), body
    assert [e["Big"] for e in body["value"]] == ["12345678901"], body
    # return-content on insert: 201 with the entity
    r = send("POST", "/fmt", json.dumps({"PartitionKey": "p", "RowKey": "s"}).encode(), headers={"Prefer": "return-content"})
    assert r.status_code == 201 and r.json()["RowKey"] == "s", r.text
    # MERGE via POST with X-HTTP-Method, If-Match exact
    r = send("POST", path, json.dumps({"X": 1}).encode(), headers={"X-HTTP-Method": "MERGE", "If-Match": etag})
    assert r.status_code == 204, r.text
    r = send("POST", path, json.dumps({"X": 2}).encode(), headers={"X-HTTP-Method": "MERGE", "If-Match": etag})
    assert_json_error(r, 412, "UpdateConditionNotSatisfied")
    r = send("DELETE", path)
    assert_json_error(r, 400, "MissingRequiredHeader")


def batch_body(ops, boundary="batch_b1", changeset="changeset_c1"):
    parts = []
    for method, url_path, body in ops:
        headers = "Content-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\nPrefer: return-no-content\r\n"
        if method == "DELETE":
            headers += "If-Match: *\r\n"
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"{method} {endpoint()}{url_path} HTTP/1.1\r\n{headers}\r\n{json.dumps(body) if body is not None else ''}\r\n"
        )
    return (
        f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        + "".join(parts)
        + f"--{changeset}--\r\n--{boundary}--\r\n"
    ).encode()


def send_batch(ops):
    return send("POST", "/$batch", batch_body(ops), headers={"Content-Type": "multipart/mixed; boundary=batch_b1"})


@case
def batch_across_partitions():
    create("bat")
    r = send_batch([
        ("POST", "/bat", {"PartitionKey": "a", "RowKey": "1"}),
        ("POST", "/bat", {"PartitionKey": "b", "RowKey": "1"}),
    ])
    assert r.status_code == 202, r.text
    assert "HTTP/1.1 400 Bad Request" in r.text, r.text
    assert '"code":"CommandsInBatchActOnDifferentPartitions"' in r.text, r.text
    assert '"value":"1:' in r.text, r.text
    r = send("GET", "/bat()")
    assert r.json()["value"] == [], "nothing of the refused batch is stored"
    # the same entity twice
    r = send_batch([
        ("POST", "/bat", {"PartitionKey": "a", "RowKey": "1"}),
        ("DELETE", "/bat(PartitionKey='a',RowKey='1')", None),
    ])
    assert '"code":"InvalidDuplicateRow"' in r.text, r.text
    # a good batch: one response part per operation
    r = send_batch([
        ("POST", "/bat", {"PartitionKey": "a", "RowKey": "1"}),
        ("PUT", "/bat(PartitionKey='a',RowKey='2')", {"V": 1}),
        ("MERGE", "/bat(PartitionKey='a',RowKey='3')", {"V": 1}),
    ])
    assert r.status_code == 202 and r.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_"), r.headers
    assert r.text.count("HTTP/1.1 204 No Content") == 3, r.text
    assert len(send("GET", "/bat()").json()["value"]) == 3


@case
def malformed():
    create("bad")
    r = send("POST", "/bad", b"{not json")
    assert_json_error(r, 400, "InvalidInput")
    r = send("POST", "/bad", b"[1,2]")
    assert_json_error(r, 400, "InvalidInput")
    r = send("POST", "/bad", json.dumps({"PartitionKey": "p", "RowKey": "r", "N@odata.type": "Edm.Int64", "N": "x"}).encode())
    assert_json_error(r, 400, "InvalidInput")
    r = send("POST", "/Tables", b"{}")
    assert_json_error(r, 400, "PropertiesNeedValue")
    r = send("POST", "/Tables", json.dumps({"TableName": "bad-name"}).encode())
    assert_json_error(r, 400, "InvalidResourceName")
    r = send("GET", "/bad(PartitionKey='p')")
    assert_json_error(r, 400, "InvalidUri")
    r = send("GET", "/bad()?$top=1001")
    assert_json_error(r, 400, "InvalidInput")
    r = send("GET", "/bad()?NextPartitionKey=garbage")
    assert_json_error(r, 400, "InvalidInput")
    r = send("POST", "/$batch", b"--x\r\nnot a changeset\r\n--x--", headers={"Content-Type": "multipart/mixed; boundary=x"})
    assert_json_error(r, 400, "InvalidInput")
    # a property named twice is InvalidInput (not last-one-wins)
    r = send("POST", "/bad", b'{"PartitionKey":"p","RowKey":"dup","A":1,"A":2}')
    assert_json_error(r, 400, "InvalidInput")
    r = send("POST", "/Tables", b'{"TableName":"dupone","TableName":"duptwo"}')
    assert_json_error(r, 400, "InvalidInput")
    assert "dup" not in send("GET", "/Tables").text
    assert send("GET", "/bad()").json()["value"] == []


if __name__ == "__main__":
    main()
