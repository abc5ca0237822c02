"""What both guestbook roles share: the storage names, the clients, the
entry keys and the queue message format.

Storage (the official Azure SDKs, from the `DataConnectionString` setting):

- blob container ``guestbook-pics``: the uploaded photos (``<hex>.<ext>``)
  and their thumbnails (``thumbnails/<hex>.jpg`` or ``.png``);
- table ``guestbookentry``: one entity per entry, PartitionKey the UTC day
  (``YYYYMMDD``), RowKey the inverted time plus a random suffix (newest
  first within a day), properties GuestName, Message, PhotoUrl,
  ThumbnailUrl (empty until the worker made it);
- queue ``guestthumbs``: one JSON message per photo,
  ``{"blob": NAME, "partition": PK, "row": RK}``.

A copy of this file sits in each role folder (a role's package holds only
its own folder); tests keep the copies identical.
"""

import datetime
import json
import logging
import signal
import sys
import threading
import time
import uuid
from urllib.parse import unquote, urlparse

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

import weftrole

CONTAINER = "guestbook-pics"
TABLE = "guestbookentry"
QUEUE = "guestthumbs"
THUMBNAIL_PREFIX = "thumbnails/"
SETTING = "DataConnectionString"

# .NET's DateTime.MaxValue.Ticks: the classic sample's inverted-time RowKey.
_MAX_TICKS = 3155378975999999999
_EPOCH = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc)


class Storage:
    """The three clients, from one connection string.

    ``UseDevelopmentStorage=true`` (the storage `weft up` serves on
    127.0.0.1:10000-10002) and full connection strings with explicit
    ``BlobEndpoint``/``QueueEndpoint``/``TableEndpoint`` both work: the
    Azure SDKs for Python parse them themselves.
    """

    def __init__(self, connection_string):
        self.connection_string = connection_string
        self.blobs = BlobServiceClient.from_connection_string(connection_string)
        self.container = self.blobs.get_container_client(CONTAINER)
        self.queue = QueueClient.from_connection_string(connection_string, QUEUE)
        self.table = TableClient.from_connection_string(connection_string, TABLE)

    def ensure(self):
        """Creates the container, queue and table when missing (idempotent,
        safe when several instances start at once)."""
        for create in (
            self.container.create_container,
            self.queue.create_queue,
            self.table.create_table,
        ):
            try:
                create()
            except ResourceExistsError:
                pass

    def ensure_with_retry(self, log, stop=None, deadline_s=None):
        """ensure(), retried with backoff until it works (storage may start
        after the role); returns False if `stop` is set first."""
        delay = 0.2
        started = time.monotonic()
        while True:
            try:
                self.ensure()
                return True
            except AzureError as e:
                log.warning("storage not reachable yet: %s", first_line(e))
                if deadline_s is not None and time.monotonic() - started > deadline_s:
                    raise
            if stop is not None and stop.wait(delay):
                return False
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Clients:
    """The role's Storage, from the DataConnectionString setting on the
    runtime endpoint.

    As in Azure's classic sample, a change of the connection string is not
    applied live: the Changing handler cancels it, so weft recycles the
    instance and it starts over with the new setting (other changes are
    accepted live). Use it as ``env.follow_events(clients.on_event,
    answer_changing=True)``.
    """

    def __init__(self, env, log):
        self.log = log
        self.instance_id = env.instance()["instance_id"]
        self.storage = Storage(env.setting(SETTING))
        # Set once the container, queue and table exist.
        self.ready = False

    def on_event(self, event):
        """A weftrole.follow_events handler: True (cancel: recycle) for a
        Changing of the connection string."""
        if event.get("event") == "changing" and SETTING in weftrole.changed_settings(event):
            self.log.info("%s is changing: asking for a recycle to use it", SETTING)
            return True
        return False


def start_role(log, stopping_note):
    """What both roles do first: log to stdout, turn SIGTERM and SIGINT into
    the returned ``stopping`` event (logging ``signal N: <stopping_note>``),
    connect to the runtime endpoint and follow its events with the Clients'
    Changing handler. Returns (env, clients, stopping)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDKs log every request and response at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)
    stopping = threading.Event()

    def stop(signum, _frame):
        log.info("signal %d: %s", signum, stopping_note)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = weftrole.RoleEnvironment()
    clients = Clients(env, log)
    env.follow_events(clients.on_event, answer_changing=True)
    return env, clients, stopping


def new_entry_keys(now=None):
    """(PartitionKey, RowKey) for an entry written now."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ticks = (now - _EPOCH) // datetime.timedelta(microseconds=1) * 10
    return now.strftime("%Y%m%d"), f"{_MAX_TICKS - ticks:019d}_{uuid.uuid4().hex[:8]}"


def recent_days(days, now=None):
    """PartitionKeys of the last `days` days, newest first."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return [(now - datetime.timedelta(days=d)).strftime("%Y%m%d") for d in range(days)]


def thumbnail_message(blob, partition, row):
    return json.dumps({"blob": blob, "partition": partition, "row": row})


def parse_thumbnail_message(text):
    """(blob, partition, row) from a queue message; ValueError if malformed."""
    job = json.loads(text)
    if not isinstance(job, dict):
        raise ValueError("not a JSON object")
    values = tuple(job.get(k) for k in ("blob", "partition", "row"))
    if not all(isinstance(v, str) and v for v in values):
        raise ValueError("blob, partition and row must be non-empty strings")
    return values


def blob_name_from_url(url):
    """The blob name inside CONTAINER that a stored URL points at, or None."""
    if not url:
        return None
    path = unquote(urlparse(url).path)
    marker = f"/{CONTAINER}/"
    if marker not in path:
        return None
    return path.split(marker, 1)[1]


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
