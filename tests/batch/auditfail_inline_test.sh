#!/usr/bin/env bash
# Fail closed when the audit log cannot be written, with `fsync none`: there the worker
# thread makes the buffered write itself (not io_uring's kernel worker), so the file-size
# limit reaches the server's own thread. The same checks as auditfail_test.sh.
export AUDITFAIL_FSYNC=none
source "$SRC_DIR/tests/batch/auditfail_test.sh"
