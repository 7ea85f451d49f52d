/* Whole-file reads and atomic writes for configuration, key and state files.
 * Start-up and CLI paths only (they allocate); the request path never touches files. */
#ifndef IDM_CORE_FILE_H
#define IDM_CORE_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the whole file into a new NUL-terminated buffer (*out, free() it). Refuses files
 * over max_bytes (IDM_ERR_TOO_LARGE) and non-regular files. Reasons name the path. */
idm_err_t idm_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len,
                        idm_why_t *why);

/* Like idm_file_read, for secrets: also refuses (IDM_ERR_PERM) a file that group or
 * others may read or write, naming the path and its mode. */
idm_err_t idm_file_read_secret(const char *path, size_t max_bytes, char **out, size_t *out_len,
                               idm_why_t *why);

/* Writes data to path atomically: a temporary file in the same directory with the given
 * mode, fsync, rename over path, fsync of the directory. Readers see the old or the new
 * contents, never a mix. */
idm_err_t idm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                idm_why_t *why);

/* Creates dir with mode if missing (parents must exist). An existing dir is left as is. */
idm_err_t idm_dir_ensure(const char *dir, mode_t mode, idm_why_t *why);

/* Joins dir and a relative path into out ("dir/rel"); an absolute rel is copied as is. */
idm_err_t idm_path_join(char *out, size_t cap, const char *dir, const char *rel);

#ifdef __cplusplus
}
#endif
#endif
