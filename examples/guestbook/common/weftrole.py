"""A Python role's view of weft's runtime endpoint: Azure's RoleEnvironment.

weft gives every instance a runtime endpoint, HTTP/1.1 with JSON bodies on
the Unix socket named by WEFT_RUNTIME (``unix:/path``); see
crates/runtime/src/protocol.rs. This module is the small client the
guestbook's roles use, with the standard library only:

- ``RoleEnvironment.setting(name)`` -- a configuration setting's current
  value (Azure's ``RoleEnvironment.GetConfigurationSettingValue``);
- ``RoleEnvironment.endpoint(name)`` -- the (host, port) this instance
  listens on for an endpoint (after weft's port remapping);
- ``RoleEnvironment.set_status("ready" | "busy")`` -- readiness, with
  ``setReadyOnProcessStart="false"`` in the csdef;
- ``RoleEnvironment.follow_events(handler)`` -- Changing / Changed /
  Stopping, on a background thread.

A copy of this file sits in each role folder (a role's package holds only
its own folder); tests keep the copies identical.
"""

import http.client
import json
import logging
import os
import socket
import threading

RUNTIME_ENV = "WEFT_RUNTIME"


class RoleEnvironmentError(Exception):
    """The runtime endpoint is missing or answered an error."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class RoleEnvironment:
    """The instance's runtime endpoint (WEFT_RUNTIME)."""

    def __init__(self, address=None):
        address = address or os.environ.get(RUNTIME_ENV)
        if not address:
            raise RoleEnvironmentError(
                f"{RUNTIME_ENV} is not set: this program runs as a weft role instance"
            )
        if not address.startswith("unix:"):
            raise RoleEnvironmentError(f"{RUNTIME_ENV}={address!r} is not a unix: address")
        self._path = address[len("unix:"):]

    def _request(self, method, path, body=None, timeout=10.0):
        conn = _UnixConnection(self._path, timeout)
        try:
            headers = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except OSError as e:
            raise RoleEnvironmentError(f"runtime endpoint {self._path}: {method} {path}: {e}") from e
        finally:
            conn.close()
        if resp.status >= 400:
            raise RoleEnvironmentError(
                f"runtime endpoint: {method} {path} answered {resp.status}: "
                f"{payload.decode(errors='replace')}"
            )
        return json.loads(payload) if payload else None

    def instance(self):
        """Who this instance is, its settings, local resources and endpoints."""
        return self._request("GET", "/v1/instance")

    def setting(self, name):
        """A configuration setting's current value."""
        settings = self.instance()["settings"]
        if name not in settings:
            raise RoleEnvironmentError(
                f"the configuration has no setting {name} "
                f"(it has: {', '.join(sorted(settings)) or 'none'})"
            )
        return settings[name]

    def endpoint(self, name):
        """(host, port) this instance listens on for endpoint `name`."""
        endpoints = self.instance()["endpoints"]
        if name not in endpoints:
            raise RoleEnvironmentError(f"the role has no endpoint {name}")
        host, _, port = endpoints[name]["address"].rpartition(":")
        return host.strip("[]"), int(port)

    def set_status(self, status):
        """Reports "ready" (into the load balancer) or "busy" (out of it)."""
        self._request("PUT", "/v1/status", {"status": status})

    def answer_changing(self, event_id, cancel):
        """Answers a Changing event that carries an id (cancel: recycle)."""
        self._request("POST", f"/v1/changing/{event_id}", {"cancel": bool(cancel)})

    def follow_events(self, handler, answer_changing=False):
        """Calls handler(event) for every event, on a daemon thread.

        ``event`` is the decoded JSON object: ``{"event": "changing" |
        "changed", "changes": [...]}`` or ``{"event": "stopping"}``.

        With ``answer_changing=True`` the stream answers Changing (Azure's
        ``RoleEnvironment.Changing`` handler): a settings Changing then
        carries an ``id``, and the handler's return value is the answer --
        True cancels the change, so weft recycles the instance (restarts it
        with the new configuration) instead of applying it live; False or
        None accepts it. weft waits a few seconds for the answer. Without
        it (and for a role that follows no events at all) every change is
        applied live, Azure's default.

        Returns once the subscription is registered, so every event
        published afterwards reaches the handler.
        """
        path = "/v1/events?changing=answer" if answer_changing else "/v1/events"
        conn = _UnixConnection(self._path, None)
        conn.request("GET", path)
        resp = conn.getresponse()
        if resp.status != 200:
            raise RoleEnvironmentError(f"runtime endpoint: GET {path} answered {resp.status}")

        def pump():
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    try:
                        cancel = handler(event)
                    except Exception:  # a failing handler must not stop the stream
                        logging.getLogger("weftrole").exception("event handler failed on %s", event)
                        cancel = False
                    if event.get("event") == "changing" and event.get("id") is not None:
                        self.answer_changing(event["id"], bool(cancel))
            except (OSError, ValueError, http.client.HTTPException, RoleEnvironmentError):
                return
            finally:
                conn.close()

        threading.Thread(target=pump, name="weft-events", daemon=True).start()


def changed_settings(event):
    """The setting names a Changing/Changed event names."""
    return {c["name"] for c in event.get("changes", []) if c.get("kind") == "setting"}
