# crashsafe_test.sh with server.audit_preallocate 1 (MiB): kill -9 under load leaves a
# zero-filled tail that the restart and `idmint audit verify` handle, and SIGTERM
# truncates the log to its last line.
AUDIT_PREALLOC=1 exec bash "$SRC_DIR/tests/batch/crashsafe_test.sh"
