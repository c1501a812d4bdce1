"""Tests of the generated clients (a package, so that its conftest does not shadow tests/fidelity/conftest.py,
which the fidelity tests import as `conftest`)."""
