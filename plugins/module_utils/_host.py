# Copyright (c) fleetpatch contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What fleetpatch's host-side logic needs from Ansible on the host: run a command, GET a URL, find a tool.

It also downloads a file (an artifact the host fetches from its URL itself).

A plain ``http://`` GET (a health probe's sample, the service's version) is made with ``http.client``, in process:
``open_url`` builds a TLS context and loads the system's CA bundle on every call, even for plain HTTP, which cost
about 35 ms of CPU per request here, more than the request itself (about 1 ms). The answer is the same: the
status, the body (at most :data:`MAX_BODY` bytes), the same messages when no answer comes. A URL that needs more
(https, credentials in it, a proxy configured for it, or an answer that redirects) goes through ``open_url``.

PRIVATE to the fleetpatch.rollout collection: no compatibility promise to code outside it.

The logic in the other ``module_utils`` files takes a ``host`` object with these three methods instead of an
``AnsibleModule``, so its unit tests can hand it one that runs on the test machine.
"""

from __future__ import annotations

import http.client
import os
import shutil
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

from ansible_collections.fleetpatch.rollout.plugins.module_utils._errors import PatchError

__all__ = ["ModuleHost", "MAX_BODY"]

MAX_BODY = 65536
REDIRECTS = (301, 302, 303, 307, 308)  # open_url follows them (follow_redirects=safe, for a GET)
AGENT = "ansible-httpget"  # what open_url says it is


def _plain_get(url, timeout):
    """``(status, body)`` of ``GET url`` made with ``http.client``, or None when ``open_url`` is to make it (see the header).

    Raises ``OSError`` (refused, timed out, reset) or ``http.client.HTTPException`` when no answer came.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or "@" in parts.netloc or not parts.hostname:
        return None
    if "http" in getproxies() and not proxy_bypass(parts.netloc):
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": AGENT, "Connection": "close"})
        response = connection.getresponse()
        if response.status in REDIRECTS and response.getheader("Location"):
            return None
        return response.status, response.reason, to_text(response.read(MAX_BODY), errors="surrogate_or_replace")
    finally:
        connection.close()


class ModuleHost:
    """The host as an ``AnsibleModule`` reaches it."""

    def __init__(self, module):
        self._module = module

    def run(self, argv):
        """Run ``argv`` (no shell); returns ``(rc, stdout, stderr)`` as text."""
        return self._module.run_command(argv, check_rc=False)

    def which(self, name):
        """Path of the executable ``name``, or None."""
        return self._module.get_bin_path(name)

    def get(self, url, timeout):
        """The body (text, at most :data:`MAX_BODY` bytes) of ``GET url``; :class:`PatchError` on any failure."""
        try:
            answer = _plain_get(url, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise PatchError(f"GET {url} failed: {exc}", url=url) from None
        if answer is not None:
            status, reason, body = answer
            if status >= 400:  # as open_url raises HTTPError for it
                raise PatchError(f"GET {url} failed: {reason}", url=url)
            return body
        try:
            response = open_url(url, timeout=timeout, follow_redirects="safe")
            try:
                return to_text(response.read(MAX_BODY), errors="surrogate_or_replace")
            finally:
                response.close()
        except Exception as exc:  # open_url raises URLError, HTTPError, socket and SSL errors alike
            raise PatchError(f"GET {url} failed: {getattr(exc, 'reason', exc)}", url=url) from None

    def request(self, url, timeout):
        """``(status, body)`` of ``GET url``, an HTTP error status included; :class:`PatchError` when no answer came."""
        try:
            answer = _plain_get(url, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise PatchError(f"GET {url} failed: {exc}", url=url) from None
        if answer is not None:
            return answer[0], answer[2]
        try:
            response = open_url(url, timeout=timeout, follow_redirects="safe")
        except HTTPError as exc:  # a 4xx or 5xx answer is an answer: the caller judges the status
            try:
                return exc.code, to_text(exc.read(MAX_BODY), errors="surrogate_or_replace")
            finally:
                exc.close()
        except Exception as exc:  # refused, timed out, reset, TLS: no answer at all
            raise PatchError(f"GET {url} failed: {getattr(exc, 'reason', exc)}", url=url) from None
        try:
            return response.getcode(), to_text(response.read(MAX_BODY), errors="surrogate_or_replace")
        except Exception as exc:  # the connection dropped while the body was read
            raise PatchError(f"GET {url} failed: {exc}", url=url) from None
        finally:
            response.close()

    def download(self, url, path, timeout):
        """Save the body of ``GET url`` to ``path``; :class:`PatchError` on any failure (``path`` then removed)."""
        try:
            response = open_url(url, timeout=timeout, follow_redirects="safe")
            try:
                with open(path, "wb") as handle:
                    shutil.copyfileobj(response, handle, MAX_BODY)
            finally:
                response.close()
        except Exception as exc:  # same family of errors as get()
            try:
                os.unlink(path)
            except OSError:
                pass
            raise PatchError(f"GET {url} failed: {getattr(exc, 'reason', exc)}", url=url) from None
