"""Fixtures shared by the conformance modules (one server per peer for the whole session)."""

from tests.conformance.triton_models import triton_repository, triton_server  # noqa: F401
