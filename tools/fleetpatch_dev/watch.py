"""Watching a test fleet while a rollout runs: how many members of each cluster were down at once."""

from __future__ import annotations

import threading
import urllib.request


class QuorumWatch:
    """Polls every cluster member's service while the rollout runs and keeps the most members seen down at once."""

    def __init__(self, fleet, members):
        self.fleet, self.members, self.worst, self.samples = fleet, members, {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _up(self, name):
        try:
            with urllib.request.urlopen(self.fleet.service_url(name, "/health"), timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def _run(self):
        while not self._stop.is_set():
            down = {}
            for name, cluster in self.members.items():
                if not self._up(name):
                    down[cluster] = down.get(cluster, 0) + 1
            for cluster, count in down.items():
                self.worst[cluster] = max(self.worst.get(cluster, 0), count)
            self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
