"""Raw-HTTP conformance: signatures computed here by hand (not by the SDK),
error bodies and headers, version acceptance, naming rules, bad bodies."""

import base64
import hashlib
import hmac
import http.client
import os
import socket
import sys
from email.utils import formatdate
from urllib.parse import quote, unquote, urlsplit, parse_qsl

sys.path.insert(0, os.path.dirname(__file__))
from common import ACCOUNT, KEY, case, endpoint, main  # noqa: E402

import requests  # noqa: E402

VERSION = "2025-01-05"


def string_to_sign(method, url, headers, lite=False):
    """The blob service's SharedKey string to sign, written from the REST
    reference: standard headers, canonicalized x-ms- headers, then the
    canonicalized resource (the account name twice with path-style URLs)."""
    h = {k.lower(): v for k, v in headers.items()}
    parts = urlsplit(url)
    canon_headers = "".join(f"{k}:{h[k].strip()}\n" for k in sorted(h) if k.startswith("x-ms-"))
    resource = f"/{ACCOUNT}{parts.path}"
    if lite:
        comp = dict(parse_qsl(parts.query)).get("comp")
        return "\n".join([method, h.get("content-md5", ""), h.get("content-type", ""), h.get("date", "")]) + "\n" + canon_headers + resource + (f"?comp={comp}" if comp else "")
    q = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        q.setdefault(k.lower(), []).append(unquote(v))
    for k in sorted(q):
        resource += f"\n{k}:{','.join(sorted(q[k]))}"
    length = h.get("content-length", "")
    if length == "0":
        length = ""
    std = [
        method, h.get("content-encoding", ""), h.get("content-language", ""), length,
        h.get("content-md5", ""), h.get("content-type", ""), h.get("date", ""),
        h.get("if-modified-since", ""), h.get("if-match", ""), h.get("if-none-match", ""),
        h.get("if-unmodified-since", ""), h.get("range", ""),
    ]
    return "\n".join(std) + "\n" + canon_headers + resource


def sign(method, url, headers, lite=False, key=KEY):
    sts = string_to_sign(method, url, headers, lite)
    mac = hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()
    scheme = "SharedKeyLite" if lite else "SharedKey"
    return f"{scheme} {ACCOUNT}:{base64.b64encode(mac).decode()}"


def send(method, path, body=b"", headers=None, lite=False, tamper=False, auth=True, version=VERSION, base=None):
    url = (base or endpoint()) + path
    h = {"x-ms-date": formatdate(usegmt=True), "Content-Length": str(len(body))}
    if version:
        h["x-ms-version"] = version
    h.update(headers or {})
    if auth:
        a = sign(method, url, h, lite)
        if tamper:
            a = a[:-6] + ("AAAA" if not a[-6:-2] == "AAAA" else "BBBB") + a[-2:]
        h["Authorization"] = a
    return requests.request(method, url, data=body, headers=h)


def assert_azure_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("x-ms-error-code") == code, r.headers
    assert f"<Code>{code}</Code>" in r.text, r.text
    assert "RequestId:" + r.headers["x-ms-request-id"] in r.text, r.text
    assert "\nTime:" in r.text, r.text
    assert r.headers["Content-Type"].startswith("application/xml")


def assert_common_headers(r):
    for h in ("x-ms-request-id", "x-ms-version", "Date"):
        assert h in r.headers, (h, r.headers)


@case
def signatures():
    r = send("GET", "?comp=list")
    assert r.status_code == 200, r.text
    assert_common_headers(r)
    assert "<EnumerationResults" in r.text
    r = send("GET", "?comp=list", lite=True)
    assert r.status_code == 200, ("SharedKeyLite", r.text)
    r = send("PUT", "/signed-container?restype=container", headers={"x-ms-meta-Purpose": "two   words", "x-ms-meta-a_b": "1", "x-ms-meta-a1": "2"})
    assert r.status_code == 201, r.text
    r = send("PUT", "/signed-container/" + quote("dir/ü b.txt"), body=b"abc", headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    r = send("GET", "/signed-container/" + quote("dir/ü b.txt"), headers={"x-ms-range": "bytes=1-1"})
    assert r.status_code == 206 and r.content == b"b", (r.status_code, r.content)
    assert r.headers["Content-Range"] == "bytes 1-1/3"
    # tampered signature: 403 AuthenticationFailed with the detail element
    r = send("GET", "?comp=list", tamper=True)
    assert_azure_error(r, 403, "AuthenticationFailed")
    assert "<AuthenticationErrorDetail>" in r.text
    assert_common_headers(r)
    # right signature, wrong key
    url = endpoint() + "?comp=list"
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION}
    h["Authorization"] = sign("GET", url, h, key=base64.b64encode(b"k" * 64).decode())
    assert_azure_error(requests.get(url, headers=h), 403, "AuthenticationFailed")
    # a signed header changed after signing
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION, "x-ms-meta-a": "1"}
    url = endpoint() + "/signed-container?restype=container&comp=metadata"
    h["Authorization"] = sign("PUT", url, h)
    h["x-ms-meta-a"] = "2"
    assert_azure_error(requests.put(url, headers=h), 403, "AuthenticationFailed")
    # a stale date
    h = {"x-ms-date": "Mon, 01 Jan 2001 00:00:00 GMT", "x-ms-version": VERSION}
    url = endpoint() + "?comp=list"
    h["Authorization"] = sign("GET", url, h)
    assert_azure_error(requests.get(url, headers=h), 403, "AuthenticationFailed")


@case
def versions():
    r = send("GET", "?comp=list", version="2099-12-31")
    assert r.status_code == 200, r.text
    assert r.headers["x-ms-version"] == "2099-12-31"
    r = send("GET", "?comp=list", version="2019-02-02")
    assert r.status_code == 200, r.text
    r = send("GET", "?comp=list", version="2017-11-09")
    assert_azure_error(r, 400, "InvalidHeaderValue")


@case
def naming_rules():
    for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "a_b", "x" * 64]:
        r = send("PUT", f"/{bad}?restype=container")
        assert_azure_error(r, 400, "InvalidResourceName")
    r = send("PUT", "/okname?restype=container", headers={"x-ms-meta-1bad": "x"})
    assert_azure_error(r, 400, "InvalidMetadata")
    r = send("PUT", "/okname?restype=container")
    assert r.status_code == 201
    r = send("PUT", "/okname/" + "n" * 1025, body=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert_azure_error(r, 400, "InvalidResourceName")
    r = send("GET", "/okname?restype=container&comp=list&maxresults=0")
    assert_azure_error(r, 400, "OutOfRangeInput")


@case
def bad_bodies():
    assert send("PUT", "/bodies?restype=container").status_code == 201
    for body in [b"<BlockList><Latest>x</Latest>", b"not xml at all", b"<Wrong/>", b"<BlockList><Foo>x</Foo></BlockList>"]:
        r = send("PUT", "/bodies/b?comp=blocklist", body=body)
        assert_azure_error(r, 400, "InvalidXmlDocument")
    r = send("GET", "/bodies/b")
    assert_azure_error(r, 404, "BlobNotFound")
    r = send("PUT", "/bodies/b?comp=block&blockid=not-base64!", body=b"x")
    assert_azure_error(r, 400, "InvalidQueryParameterValue")
    r = send("PUT", "/bodies/b", body=b"abc", headers={"x-ms-blob-type": "BlockBlob", "Content-MD5": base64.b64encode(hashlib.md5(b"abd").digest()).decode()})
    assert_azure_error(r, 400, "Md5Mismatch")
    assert_azure_error(send("GET", "/bodies/b"), 404, "BlobNotFound")
    r = send("PUT", "/bodies/b", body=b"abc")
    assert_azure_error(r, 400, "MissingRequiredHeader")
    r = send("PUT", "/bodies?restype=container&comp=acl", body=b"<SignedIdentifiers><SignedIdentifier></SignedIdentifier></SignedIdentifiers>")
    assert_azure_error(r, 400, "InvalidXmlDocument")


def send_chunked(method, path, chunks, headers=None):
    """Like send, but the body goes out with Transfer-Encoding: chunked and
    no Content-Length."""
    url = endpoint() + path
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION}
    h.update(headers or {})
    h["Authorization"] = sign(method, url, h)
    return requests.request(method, url, data=iter(chunks), headers=h)


@case
def content_length_required():
    assert send("PUT", "/lengths?restype=container").status_code == 201
    # Put Blob, Put Block and Append Block need Content-Length: 411
    r = send_chunked("PUT", "/lengths/b", [b"ab", b"c"], {"x-ms-blob-type": "BlockBlob"})
    assert_azure_error(r, 411, "MissingContentLengthHeader")
    assert_azure_error(send("GET", "/lengths/b"), 404, "BlobNotFound")
    blockid = base64.b64encode(b"block-1").decode()
    r = send_chunked("PUT", f"/lengths/b?comp=block&blockid={quote(blockid)}", [b"ab"])
    assert_azure_error(r, 411, "MissingContentLengthHeader")
    r = send("GET", "/lengths/b?comp=blocklist&blocklisttype=all")
    assert_azure_error(r, 404, "BlobNotFound")
    assert send("PUT", "/lengths/app", headers={"x-ms-blob-type": "AppendBlob"}).status_code == 201
    r = send_chunked("PUT", "/lengths/app?comp=appendblock", [b"ab"])
    assert_azure_error(r, 411, "MissingContentLengthHeader")
    r = send("GET", "/lengths/app")
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.content)
    # the same requests with a length work
    assert send("PUT", "/lengths/app?comp=appendblock", body=b"ab").status_code == 201
    assert send("GET", "/lengths/app").content == b"ab"


@case
def oversized_headers():
    # one header past 16 KiB, or a head past 64 KiB: 400 with an Azure body
    r = send("GET", "?comp=list", headers={"x-ms-client-request-id": "a" * (17 * 1024)})
    assert_azure_error(r, 400, "InvalidHeaderValue")
    r = send("PUT", "/bigheads?restype=container", headers={f"x-ms-meta-m{i}": "a" * 15000 for i in range(5)})
    assert_azure_error(r, 400, "InvalidHeaderValue")
    assert_azure_error(send("GET", "/bigheads?restype=container"), 404, "ContainerNotFound")
    # just under the limit is fine (and then refused for its metadata size)
    r = send("PUT", "/bigheads?restype=container", headers={"x-ms-meta-m": "a" * 16000})
    assert_azure_error(r, 400, "MetadataTooLarge")
    r = send("PUT", "/bigheads?restype=container", headers={"x-ms-meta-m": "a" * 8000})
    assert r.status_code == 201, r.text
    # the queue service shares the front door
    qurl = os.environ["WEFT_QUEUE_ENDPOINT"] + "?comp=list"
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION, "x-ms-client-request-id": "q" * (17 * 1024)}
    r = requests.get(qurl, headers=h)
    assert r.status_code == 400 and "<Code>InvalidHeaderValue</Code>" in r.text, (r.status_code, r.text)
    # and the table service answers in its own JSON
    turl = os.environ["WEFT_TABLE_ENDPOINT"] + "/Tables"
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": VERSION, "Accept": "application/json", "x-ms-client-request-id": "t" * (17 * 1024)}
    r = requests.get(turl, headers=h)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["odata.error"]["code"] == "InvalidHeaderValue", r.text


@case
def queue_signatures_and_bodies():
    qbase = os.environ["WEFT_QUEUE_ENDPOINT"]
    # SharedKey and SharedKeyLite, computed here, with the queue's resource
    r = send("PUT", "/signed", base=qbase)
    assert r.status_code == 201, r.text
    r = send("POST", "/signed/messages", body=b"<QueueMessage><MessageText>hi</MessageText></QueueMessage>", base=qbase, lite=True)
    assert r.status_code == 201, ("SharedKeyLite", r.text)
    r = send("GET", "/signed/messages?peekonly=true", base=qbase, lite=True)
    assert r.status_code == 200 and "<MessageText>hi</MessageText>" in r.text, r.text
    # a tampered signature: 403 with the XML error body
    for lite in (False, True):
        r = send("GET", "?comp=list", base=qbase, lite=lite, tamper=True)
        assert_azure_error(r, 403, "AuthenticationFailed")
        assert "<AuthenticationErrorDetail>" in r.text
    # malformed message bodies: InvalidXmlDocument, nothing enqueued
    for body in [b"<QueueMessage><MessageText>cut", b"not xml", b"<QueueMessage></QueueMessage>", b""]:
        r = send("POST", "/signed/messages", body=body, base=qbase)
        assert_azure_error(r, 400, "InvalidXmlDocument")
    r = send("GET", "/signed/messages?numofmessages=32&peekonly=true", base=qbase)
    assert r.text.count("<QueueMessage>") == 1, r.text
    # peek takes at most 32 too (the SDK checks this before sending)
    r = send("GET", "/signed/messages?numofmessages=33&peekonly=true", base=qbase)
    assert_azure_error(r, 400, "OutOfRangeQueryParameterValue")


@case
def query_and_header_values():
    assert send("PUT", "/values?restype=container").status_code == 201
    assert send("PUT", "/values/b", body=b"x", headers={"x-ms-blob-type": "BlockBlob"}).status_code == 201
    # a verb the resource does not take: 405
    assert_azure_error(send("POST", "/values?restype=container"), 405, "UnsupportedHttpVerb")
    assert_azure_error(send("PATCH", "/values/b"), 405, "UnsupportedHttpVerb")
    qbase = os.environ["WEFT_QUEUE_ENDPOINT"]
    assert send("PUT", "/vqq", base=qbase).status_code == 201
    assert_azure_error(send("PUT", "/vqq/messages", base=qbase), 405, "UnsupportedHttpVerb")
    assert send("GET", "?comp=list&include=metadata", base=qbase).status_code == 200
    assert_azure_error(send("GET", "?comp=list&include=bogus", base=qbase), 400, "InvalidQueryParameterValue")
    # include takes only the values Azure defines
    r = send("GET", "/values?restype=container&comp=list&include=metadata,snapshots,uncommittedblobs,copy,tags")
    assert r.status_code == 200 and "<Name>b</Name>" in r.text, r.text
    assert_azure_error(send("GET", "/values?restype=container&comp=list&include=bogus"), 400, "InvalidQueryParameterValue")
    assert_azure_error(send("GET", "/values?restype=container&comp=list&include=metadata,bogus"), 400, "InvalidQueryParameterValue")
    assert send("GET", "?comp=list&include=metadata").status_code == 200
    assert send("GET", "?comp=list&include=").status_code == 200
    assert_azure_error(send("GET", "?comp=list&include=snapshots"), 400, "InvalidQueryParameterValue")
    # a snapshot is named by a time: garbage is 400, a time no snapshot has 404
    assert_azure_error(send("GET", "/values/b?snapshot=garbage"), 400, "InvalidQueryParameterValue")
    assert_azure_error(send("GET", "/values/b?snapshot=2001-01-01T00:00:00.0000000Z"), 404, "BlobNotFound")
    # proposed lease ids are GUIDs
    lease = {"x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1"}
    r = send("PUT", "/values/b?comp=lease", headers={**lease, "x-ms-proposed-lease-id": "not-a-guid"})
    assert_azure_error(r, 400, "InvalidHeaderValue")
    assert send("HEAD", "/values/b").headers.get("x-ms-lease-state", "available") == "available"
    r = send("PUT", "/values/b?comp=lease", headers={**lease, "x-ms-proposed-lease-id": "9c5b1a5e-3f2d-4b8e-9a51-0c1d2e3f4a5b"})
    assert r.status_code == 201 and r.headers["x-ms-lease-id"] == "9c5b1a5e-3f2d-4b8e-9a51-0c1d2e3f4a5b", (r.status_code, r.text)
    # blob names: at most 254 path segments
    r = send("PUT", "/values/" + "s/" * 254, body=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert r.status_code == 201, r.text
    r = send("PUT", "/values/" + "s/" * 255, body=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert_azure_error(r, 400, "InvalidResourceName")


def send_raw_headers(method, path, pairs, body=b""):
    """Sends headers exactly as listed (repeats and case kept), signed as
    the service canonicalizes them: a repeated name's values joined by
    commas."""
    url = endpoint() + path
    pairs = [("x-ms-date", formatdate(usegmt=True)), ("x-ms-version", VERSION), ("Content-Length", str(len(body)))] + pairs
    merged = {}
    for k, v in pairs:
        merged[k.lower()] = merged[k.lower()] + "," + v if k.lower() in merged else v
    pairs.append(("Authorization", sign(method, url, merged)))
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.putrequest(method, parts.path + ("?" + parts.query if parts.query else ""), skip_accept_encoding=True)
    for k, v in pairs:
        conn.putheader(k, v)
    conn.endheaders(body)
    r = conn.getresponse()
    return r.status, r.getheader("x-ms-error-code"), r.read().decode()


@case
def duplicate_metadata_names():
    # names are case-insensitive: x-ms-meta-Owner and x-ms-meta-owner name
    # one entry twice, which Azure refuses with 400
    assert send("PUT", "/dups?restype=container", headers={"x-ms-meta-keep": "1"}).status_code == 201
    status, code, text = send_raw_headers("PUT", "/dups?restype=container&comp=metadata", [("x-ms-meta-Owner", "me"), ("x-ms-meta-owner", "you")])
    assert (status, code) == (400, "InvalidMetadata"), (status, code, text)
    assert "<Code>InvalidMetadata</Code>" in text, text
    assert send("GET", "/dups?restype=container").headers.get("x-ms-meta-keep") == "1"
    status, code, text = send_raw_headers("PUT", "/dups/b", [("x-ms-blob-type", "BlockBlob"), ("x-ms-meta-a", "1"), ("x-ms-meta-A", "2")], body=b"x")
    assert (status, code) == (400, "InvalidMetadata"), (status, code, text)
    assert_azure_error(send("GET", "/dups/b"), 404, "BlobNotFound")
    # one name once, a comma in its value: fine
    status, code, text = send_raw_headers("PUT", "/dups/b", [("x-ms-blob-type", "BlockBlob"), ("x-ms-meta-a", "1,2")], body=b"x")
    assert status == 201, (status, code, text)
    assert send("HEAD", "/dups/b").headers["x-ms-meta-a"] == "1,2"


@case
def head_errors_have_no_body():
    r = send("HEAD", "/nosuchcontainer/blob")
    assert r.status_code == 404
    assert r.headers["x-ms-error-code"] == "ContainerNotFound"
    assert r.content == b""


class _Unclosed:
    """One buffered reader shared by several http.client responses read
    back to back from one connection."""

    def __init__(self, f):
        self.f = f

    def makefile(self, mode):
        return self

    def close(self):
        pass

    def __getattr__(self, name):
        return getattr(self.f, name)


def raw_request(method, path, pairs, body=b"", chunks=None):
    """One signed request as bytes, header names exactly as given; a
    chunked body when chunks is given."""
    url = endpoint() + path
    pairs = [("Host", urlsplit(url).netloc), ("x-ms-date", formatdate(usegmt=True)), ("x-ms-version", VERSION)] + pairs
    if chunks is None:
        pairs.append(("Content-Length", str(len(body))))
    else:
        pairs.append(("Transfer-Encoding", "chunked"))
    pairs.append(("Authorization", sign(method, url, {k.lower(): v for k, v in pairs})))
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n"
    if chunks is not None:
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nx-trailer: 1\r\n\r\n"
    return head.encode() + body


def pipeline(requests_, methods):
    """Sends every request in one write on one connection and reads the
    responses back in order: (status, headers as sent, body) each."""
    parts = urlsplit(endpoint())
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.sendall(b"".join(requests_))
    f = _Unclosed(sock.makefile("rb"))
    out = []
    for m in methods:
        r = http.client.HTTPResponse(f, method=m)
        r.begin()
        out.append((r.status, r.getheaders(), r.read()))
    sock.close()
    return out


@case
def metadata_names_keep_their_case_pipelined():
    assert send("PUT", "/pipes?restype=container").status_code == 201
    evil = b"\r\nx-ms-meta-Evil: 1\r\n\r\nGET / HTTP/1.1\r\nx-ms-meta-Owner: z\r\n\r\n"
    reqs = [
        # 100 Continue comes back before the answer
        raw_request("PUT", "/pipes/b", [("Expect", "100-continue"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-meta-Owner", "x"), ("x-ms-meta-camelCase", "y"), ("x-ms-meta-lower", "z")], body=evil),
        raw_request("HEAD", "/pipes/b", []),
        raw_request("GET", "/pipes/b", []),
        # a chunked body on a metadata write, trailers and all
        raw_request("PUT", "/pipes?restype=container&comp=metadata", [("X-MS-META-Team", "t")], chunks=[b"\r\nx-ms-meta-Evil: 2\r\n"]),
        raw_request("GET", "/pipes?restype=container", []),
        raw_request("GET", "/pipes?restype=container&comp=list&include=metadata", []),
        raw_request("GET", "/pipes/b?comp=metadata", []),
    ]
    res = pipeline(reqs, ["PUT", "HEAD", "GET", "PUT", "GET", "GET", "GET"])
    statuses = [r[0] for r in res]
    assert statuses == [201, 200, 200, 200, 200, 200, 200], (statuses, res)
    meta = lambda headers: [(k, v) for k, v in headers if k.lower().startswith("x-ms-meta-")]  # noqa: E731
    want = [("x-ms-meta-Owner", "x"), ("x-ms-meta-camelCase", "y"), ("x-ms-meta-lower", "z")]
    for i in (1, 2, 6):
        assert sorted(meta(res[i][1])) == sorted(want), (i, res[i][1])
        assert all(k.lower() != "weft-meta-case" for k, _ in res[i][1]), res[i][1]
    assert res[1][2] == b""
    assert res[2][2] == evil, res[2][2]
    assert meta(res[4][1]) == [("x-ms-meta-Team", "t")], res[4][1]
    listing = res[5][2].decode()
    assert "<Metadata><Owner>x</Owner><camelCase>y</camelCase><lower>z</lower></Metadata>" in listing, listing
    assert "Evil" not in listing


if __name__ == "__main__":
    main()
