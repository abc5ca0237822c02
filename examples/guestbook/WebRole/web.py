"""The guestbook's web role: the page, the form, and the pictures.

- ``GET /``          the form and the latest entries with their thumbnails
- ``POST /``         multipart form (name, message, photo): the photo goes to
                     blob storage, the entry to the table, a message to the
                     queue for the worker role; answers 303 to ``/``
- ``GET /pics/NAME`` a photo or thumbnail, read from blob storage (the
                     browser needs no access to storage)
- ``GET /healthz``   the load balancer probe: 200 once storage is set up

The connection string is the ``DataConnectionString`` setting, read from
weft's runtime endpoint; when it changes the role cancels the Changing
event, so weft recycles the instance with the new value (Azure's classic
sample did the same). The role reports Ready itself once storage is set up.
"""

import email.parser
import email.policy
import html
import io
import logging
import re
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from PIL import Image

import guestbook

ENDPOINT = "HttpIn"
# The largest upload accepted (Azure's classic sample had no limit; a role
# must not buffer whatever a client sends).
MAX_UPLOAD = 8 * 1024 * 1024
MAX_NAME = 100
MAX_MESSAGE = 1000
# Entries shown: the newest first, from the last days' partitions.
SHOWN_DAYS = 7
SHOWN_ENTRIES = 50
# Decoding refuses images larger than this (a decompression bomb guard).
Image.MAX_IMAGE_PIXELS = 40_000_000
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
PIC_NAME = re.compile(r"^(thumbnails/)?[0-9a-f]{32}\.(png|jpg|gif|webp)$")

log = logging.getLogger("guestbook.web")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "guestbook"
    # Seconds a connection may stay silent (a stalled upload, an idle
    # keep-alive) before it is closed, so it cannot hold a thread forever.
    timeout = 60
    state = None  # set in main()

    def log_message(self, fmt, *args):
        if self.path != "/healthz":  # the probe comes every few seconds
            log.info("%s %s", self.address_string(), fmt % args)

    def send(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if self.state.ready:
                self.send(HTTPStatus.OK, b"ok\n", "text/plain")
            else:
                self.send(HTTPStatus.SERVICE_UNAVAILABLE, b"starting\n", "text/plain")
        elif path == "/":
            self.page(HTTPStatus.OK)
        elif path.startswith("/pics/"):
            self.picture(path[len("/pics/"):])
        else:
            self.send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    do_HEAD = do_GET

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/":
            self.send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self.send(HTTPStatus.LENGTH_REQUIRED, b"Content-Length required\n", "text/plain")
            return
        if int(length) > MAX_UPLOAD:
            self.close_connection = True
            self.page(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"The upload is larger than {MAX_UPLOAD // (1024 * 1024)} MiB.")
            return
        body = self.rfile.read(int(length))
        try:
            name, message, photo = parse_form(self.headers.get("Content-Type", ""), body)
            ext = check_image(photo)
        except ValueError as e:
            self.page(HTTPStatus.BAD_REQUEST, str(e))
            return
        try:
            add_entry(self.state.storage, name, message, photo, ext)
        except AzureError as e:
            log.error("storing an entry failed: %s", guestbook.first_line(e))
            self.page(HTTPStatus.SERVICE_UNAVAILABLE, "Storage is not available; try again.")
            return
        self.send(HTTPStatus.SEE_OTHER, b"", "text/plain", [("Location", "/")])

    def picture(self, name):
        if not PIC_NAME.match(name):
            self.send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        try:
            data = self.state.storage.container.download_blob(name).readall()
        except ResourceNotFoundError:
            self.send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        except AzureError as e:
            log.error("reading blob %s failed: %s", name, guestbook.first_line(e))
            self.send(HTTPStatus.SERVICE_UNAVAILABLE, b"storage unavailable\n", "text/plain")
            return
        ext = name[name.rindex("."):]
        self.send(HTTPStatus.OK, data, CONTENT_TYPES[ext], [("Cache-Control", "max-age=3600")])

    def page(self, status, error=None):
        try:
            entries = latest_entries(self.state.storage)
            storage_error = None
        except AzureError as e:
            log.error("listing entries failed: %s", guestbook.first_line(e))
            entries, storage_error = [], "Storage is not available; the entries cannot be shown."
        body = render(entries, error or storage_error, self.state.instance_id)
        self.send(status, body.encode())


def parse_form(content_type, body):
    """(name, message, photo bytes) from a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("The form must be sent as multipart/form-data.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise ValueError("The form is not valid multipart/form-data.")
    fields = {}
    for part in msg.iter_parts():
        field = part.get_param("name", header="content-disposition")
        if field:
            fields[field] = part.get_payload(decode=True) or b""
    name = fields.get("name", b"").decode("utf-8", "replace").strip()
    message = fields.get("message", b"").decode("utf-8", "replace").strip()
    photo = fields.get("photo", b"")
    if not name:
        raise ValueError("Please give your name.")
    if not message:
        raise ValueError("Please write a message.")
    if len(name) > MAX_NAME:
        raise ValueError(f"The name is longer than {MAX_NAME} characters.")
    if len(message) > MAX_MESSAGE:
        raise ValueError(f"The message is longer than {MAX_MESSAGE} characters.")
    if not photo:
        raise ValueError("Please choose a photo.")
    return name, message, photo


def check_image(data):
    """The file extension for an image Pillow can read; ValueError if not one."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        log.info("refused an upload: %s", e)
        raise ValueError("The photo is not a PNG, JPEG, GIF or WebP image this guestbook can read.") from e
    if fmt not in FORMATS:
        raise ValueError(f"Photos must be PNG, JPEG, GIF or WebP, not {fmt}.")
    return FORMATS[fmt]


def add_entry(storage, name, message, photo, ext):
    """Photo → blob, entry → table, work item → queue (in that order, so the
    worker never sees a message whose blob or entry is missing)."""
    blob = storage.container.get_blob_client(f"{uuid.uuid4().hex}{ext}")
    blob.upload_blob(photo, overwrite=True,
                     content_settings=ContentSettings(content_type=CONTENT_TYPES[ext]))
    partition, row = guestbook.new_entry_keys()
    storage.table.create_entity({
        "PartitionKey": partition,
        "RowKey": row,
        "GuestName": name,
        "Message": message,
        "PhotoUrl": blob.url,
        "ThumbnailUrl": "",
    })
    storage.queue.send_message(guestbook.thumbnail_message(blob.blob_name, partition, row))
    log.info("entry %s/%s stored with photo %s", partition, row, blob.blob_name)


def latest_entries(storage):
    entries = []
    for day in guestbook.recent_days(SHOWN_DAYS):
        query = storage.table.query_entities("PartitionKey eq @day", parameters={"day": day})
        for entity in query:
            entries.append(entity)
            if len(entries) >= SHOWN_ENTRIES:
                return entries
    return entries


def render(entries, error, instance):
    esc = html.escape
    pending = any(not e.get("ThumbnailUrl") for e in entries)
    items = []
    for e in entries:
        photo = guestbook.blob_name_from_url(e.get("PhotoUrl"))
        thumb = guestbook.blob_name_from_url(e.get("ThumbnailUrl"))
        if thumb:
            picture = f'<img class="thumb" src="/pics/{esc(thumb)}" alt="thumbnail">'
        else:
            picture = '<span class="pending">thumbnail on its way</span>'
        if photo:
            picture = f'<a href="/pics/{esc(photo)}">{picture}</a>'
        items.append(
            f'<li class="entry" id="{esc(e["RowKey"])}">{picture}'
            f'<div><b class="name">{esc(e.get("GuestName", ""))}</b> wrote:'
            f'<p class="message">{esc(e.get("Message", ""))}</p>'
            f'<span class="when">{esc(when(e))}</span></div></li>'
        )
    refresh = '<meta http-equiv="refresh" content="3">' if pending else ""
    problem = f'<p class="error">{esc(error)}</p>' if error else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>weft guestbook</title>{refresh}
<style>
body {{ font-family: sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }}
form {{ display: grid; grid-template-columns: max-content 1fr; gap: .6em 1em; align-items: start; }}
form textarea {{ min-height: 4em; }}
form button {{ grid-column: 2; justify-self: start; }}
ul {{ list-style: none; padding: 0; }}
li.entry {{ display: flex; gap: 1em; align-items: flex-start; margin: 1.2em 0; }}
img.thumb {{ border: 1px solid #ccc; width: 128px; }}
.pending {{ display: inline-block; width: 128px; color: #888; }}
.when {{ color: #888; font-size: small; }}
.message {{ margin: .3em 0; white-space: pre-wrap; }}
.error {{ color: #b00; }}
footer {{ color: #888; font-size: small; }}
</style></head>
<body><h1>Guestbook</h1>{problem}
<form method="post" action="/" enctype="multipart/form-data">
<label for="name">Name</label><input id="name" name="name" maxlength="{MAX_NAME}" required>
<label for="message">Message</label><textarea id="message" name="message" maxlength="{MAX_MESSAGE}" required></textarea>
<label for="photo">Photo</label><input id="photo" type="file" name="photo" accept="image/*" required>
<button>Sign the guestbook</button>
</form>
<ul>{''.join(items)}</ul>
<footer>served by {esc(instance)}</footer>
</body></html>
"""


def when(entity):
    """When an entry was written, from its table timestamp."""
    stamp = entity.metadata.get("timestamp") if hasattr(entity, "metadata") else None
    return stamp.strftime("%d %b %Y %H:%M UTC") if stamp else ""


def main():
    env, state, stopping = guestbook.start_role(log, "stopping")
    Handler.state = state
    host, port = env.endpoint(ENDPOINT)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    log.info("%s listening on %s:%d", state.instance_id, host, port)
    if state.storage.ensure_with_retry(log, stop=stopping):
        state.ready = True
        env.set_status("ready")
        log.info("storage set up: ready")
    stopping.wait()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
