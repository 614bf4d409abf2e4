"""Development tooling for fleetpatch: the demo service's artifacts and the test fleet.

Not part of the fleetpatch.rollout collection (galaxy.yml's build_ignore leaves it out): it builds the
things the demo and the test suite patch, on the machine that runs them.
"""
