"""Every registered model gets the same checks, driven by the registry.

The checks are the plugin test kit's (`zoo.testing`), the same that a plugin's own test
suite runs in one line: a new plugin's models are picked up here with no new test code,
each built from its `test_config` and held to the contract its capabilities claim.
tests/test_testing.py shows that each check catches the fault it is for.
"""

from zoo.testing import contract_tests

test_every_registered_model = contract_tests()
