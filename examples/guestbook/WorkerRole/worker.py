"""The guestbook's worker role: thumbnails.

Takes messages from the ``guestthumbs`` queue (invisible to other workers
for VISIBILITY_S while it works), downloads the photo, makes a thumbnail
THUMBNAIL_WIDTH px wide with Pillow, stores it as ``thumbnails/...`` in the
``guestbook-pics`` container, merges its URL into the table entry (with the
entity's ETag, retried on a conflict) and only then deletes the message.
Every step may be repeated (the thumbnail blob is overwritten with the same
bytes, the merge writes the same URL), so Azure's at-least-once delivery is
safe: a worker that dies mid-way leaves the message to reappear and be done
again. A message that keeps failing (MAX_DEQUEUE) or cannot be read is
logged and removed.

Health: Ready through the runtime endpoint once storage is set up, Busy
while storage keeps failing; ``GET /healthz`` on the internal endpoint
``Health`` answers 200 while the loop is alive and storage answers.
"""

import io
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.storage.blob import ContentSettings
from PIL import Image, ImageOps

import guestbook

THUMBNAIL_WIDTH = 128
VISIBILITY_S = 60
MAX_DEQUEUE = 5
# Messages taken at once (each stays invisible to other workers meanwhile).
BATCH = 8
# Idle polling backs off from the first to the second.
POLL_S = (0.1, 1.0)
# Storage failing this long turns the instance Busy (out of rotation).
BUSY_AFTER_S = 30
Image.MAX_IMAGE_PIXELS = 40_000_000

log = logging.getLogger("guestbook.worker")


class Poison(Exception):
    """A message that can never succeed: logged and deleted."""


def make_thumbnail(data):
    """(bytes, extension, content type): at most THUMBNAIL_WIDTH px wide,
    the aspect ratio kept; PNG when the photo has transparency, else JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = ImageOps.exif_transpose(img)
            transparent = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            img = img.convert("RGBA" if transparent else "RGB")
            if img.width > THUMBNAIL_WIDTH:
                height = max(1, round(img.height * THUMBNAIL_WIDTH / img.width))
                img = img.resize((THUMBNAIL_WIDTH, height), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if transparent:
                img.save(out, "PNG", optimize=True)
                return out.getvalue(), ".png", "image/png"
            img.save(out, "JPEG", quality=85)
            return out.getvalue(), ".jpg", "image/jpeg"
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise Poison(f"the photo cannot be decoded: {e}") from e


def thumbnail(storage, blob, partition, row):
    """Does one message's work; idempotent."""
    try:
        data = storage.container.download_blob(blob).readall()
    except ResourceNotFoundError as e:
        raise Poison(f"photo {blob} is gone") from e
    thumb, ext, content_type = make_thumbnail(data)
    stem = blob.rsplit(".", 1)[0]
    target = storage.container.get_blob_client(f"{guestbook.THUMBNAIL_PREFIX}{stem}{ext}")
    target.upload_blob(thumb, overwrite=True,
                       content_settings=ContentSettings(content_type=content_type))
    for _ in range(10):
        try:
            entity = storage.table.get_entity(partition, row)
        except ResourceNotFoundError as e:
            raise Poison(f"entry {partition}/{row} is gone") from e
        if entity.get("ThumbnailUrl") == target.url:
            return target.blob_name
        try:
            storage.table.update_entity(
                {"PartitionKey": partition, "RowKey": row, "ThumbnailUrl": target.url},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return target.blob_name
        except ResourceModifiedError:
            log.info("entry %s/%s changed meanwhile: merging again", partition, row)
    raise AzureError(f"entry {partition}/{row} kept changing")


def handle(storage, message):
    try:
        if message.dequeue_count > MAX_DEQUEUE:
            raise Poison(f"dequeued {message.dequeue_count} times")
        try:
            blob, partition, row = guestbook.parse_thumbnail_message(message.content)
        except ValueError as e:
            raise Poison(f"malformed message: {e}") from e
        made = thumbnail(storage, blob, partition, row)
        log.info("thumbnail %s for entry %s/%s", made, partition, row)
    except Poison as e:
        log.warning("dropping message %s: %s", message.id, e)
    try:
        storage.queue.delete_message(message)
    except ResourceNotFoundError:
        # Its visibility timeout ran out and someone else holds it now:
        # they will do the same (idempotent) work and delete it.
        log.info("message %s was taken over before it could be deleted", message.id)


def release(storage, messages):
    """Makes messages this worker will not get to visible again at once
    (stopping), instead of after their visibility timeout."""
    for message in messages:
        try:
            storage.queue.update_message(message, visibility_timeout=0)
        except AzureError as e:
            log.info("message %s stays invisible until its timeout: %s",
                     message.id, guestbook.first_line(e))
    if messages:
        log.info("stopping: %d message(s) handed back to the queue", len(messages))


class Health:
    def __init__(self):
        self.lock = threading.Lock()
        self.last_ok = time.monotonic()
        self.failing_since = None

    def ok(self):
        with self.lock:
            self.last_ok = time.monotonic()
            self.failing_since = None

    def failed(self):
        with self.lock:
            if self.failing_since is None:
                self.failing_since = time.monotonic()
            return time.monotonic() - self.failing_since

    def healthy(self):
        with self.lock:
            return self.failing_since is None and time.monotonic() - self.last_ok < 2 * VISIBILITY_S


def serve_health(env, health):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            if self.path != "/healthz":
                status, body = HTTPStatus.NOT_FOUND, b"not found\n"
            elif health.healthy():
                status, body = HTTPStatus.OK, b"ok\n"
            else:
                status, body = HTTPStatus.SERVICE_UNAVAILABLE, b"storage failing\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host, port = env.endpoint("Health")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def main():
    env, clients, stopping = guestbook.start_role(log, "stopping after the current message")
    health = Health()
    server = serve_health(env, health)
    if not clients.storage.ensure_with_retry(log, stop=stopping):
        return
    env.set_status("ready")
    busy = False
    log.info("%s ready: taking messages from %s", clients.instance_id, guestbook.QUEUE)
    idle = POLL_S[0]
    while not stopping.is_set():
        storage = clients.storage
        try:
            messages = list(storage.queue.receive_messages(
                messages_per_page=BATCH, max_messages=BATCH, visibility_timeout=VISIBILITY_S))
        except AzureError as e:
            messages = []
            failing = health.failed()
            log.error("storage failed (for %.0f s): %s", failing, guestbook.first_line(e))
            if failing > BUSY_AFTER_S and not busy:
                env.set_status("busy")
                busy = True
        else:
            health.ok()
            if busy:
                env.set_status("ready")
                busy = False
                log.info("storage answers again: ready")
        for i, message in enumerate(messages):
            if stopping.is_set():
                release(storage, messages[i:])
                break
            try:
                handle(storage, message)
            except AzureError as e:
                log.warning("message %s failed, it reappears in %d s: %s",
                            message.id, VISIBILITY_S, guestbook.first_line(e))
        if messages:
            idle = POLL_S[0]
        else:
            stopping.wait(idle)
            idle = min(idle * 2, POLL_S[1])
    server.shutdown()
    log.info("stopped")


if __name__ == "__main__":
    main()
