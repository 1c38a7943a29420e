#!/bin/sh
# The GPU parity test's own logic on any machine: test-cuda-parity with cpu
# as the backend under test (a second cpu instance against the first), so
# its comparisons run in every `make check`, GPU or not.
TP_TEST_PARITY_BACKEND=cpu
export TP_TEST_PARITY_BACKEND
exec ./tests/backends/test-cuda-parity
