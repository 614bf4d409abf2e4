"""fpdemo: the stand-in service that the fleetpatch demo and test suite patch.

``server.py`` is the service; ``fpdemoctl.py`` is its manager, installed outside the releases.
See ``demo/README.md``.
"""
