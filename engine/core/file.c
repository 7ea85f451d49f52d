#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static idm_err_t read_fd(int fd, const char *path, size_t max_bytes, bool secret, char **out,
                         size_t *out_len, idm_why_t *why) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return idm_fail(why, IDM_ERR_IO, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return idm_fail(why, IDM_ERR_IO, "%s: not a regular file", path);
  if (secret && (st.st_mode & 077))
    return idm_fail(why, IDM_ERR_PERM,
                    "%s: mode %04o lets group or others access a secret; run chmod 600 %s", path,
                    (unsigned)(st.st_mode & 07777), path);
  if ((size_t)st.st_size > max_bytes)
    return idm_fail(why, IDM_ERR_TOO_LARGE, "%s: %lld bytes exceeds the %zu-byte limit", path,
                    (long long)st.st_size, max_bytes);
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf)
    return idm_fail(why, IDM_ERR_NOMEM, "%s: out of memory", path);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(buf);
      return idm_fail(why, IDM_ERR_IO, "%s: %s", path, n == 0 ? "file shrank while reading" : strerror(errno));
    }
    got += (size_t)n;
  }
  buf[got] = '\0';
  *out = buf;
  *out_len = got;
  return IDM_OK;
}

static idm_err_t read_path(const char *path, size_t max_bytes, bool secret, char **out,
                           size_t *out_len, idm_why_t *why) {
  /* O_NONBLOCK: a FIFO (or a device) named as a file must be refused by read_fd's
   * regular-file check, not block the open until some writer appears; it changes nothing
   * for regular files. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return idm_fail(why, errno == ENOENT ? IDM_ERR_NOT_FOUND : IDM_ERR_IO, "%s: %s", path,
                    strerror(errno));
  idm_err_t e = read_fd(fd, path, max_bytes, secret, out, out_len, why);
  close(fd);
  return e;
}

idm_err_t idm_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len,
                        idm_why_t *why) {
  return read_path(path, max_bytes, false, out, out_len, why);
}

idm_err_t idm_file_read_secret(const char *path, size_t max_bytes, char **out, size_t *out_len,
                               idm_why_t *why) {
  return read_path(path, max_bytes, true, out, out_len, why);
}

idm_err_t idm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                idm_why_t *why) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "%s: path too long", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return idm_fail(why, IDM_ERR_IO, "%s: %s", tmp, strerror(errno));
  if (fchmod(fd, mode) != 0)
    goto fail;
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      goto fail;
    p += n;
    left -= (size_t)n;
  }
  if (fsync(fd) != 0)
    goto fail;
  close(fd);
  if (rename(tmp, path) != 0) {
    int err = errno;
    unlink(tmp);
    return idm_fail(why, IDM_ERR_IO, "%s: %s", path, strerror(err));
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return IDM_OK;
fail: {
  int err = errno;
  close(fd);
  unlink(tmp);
  return idm_fail(why, IDM_ERR_IO, "%s: %s", path, strerror(err));
}
}

idm_err_t idm_dir_ensure(const char *dir, mode_t mode, idm_why_t *why) {
  if (mkdir(dir, mode) == 0)
    return IDM_OK;
  if (errno != EEXIST)
    return idm_fail(why, IDM_ERR_IO, "%s: %s", dir, strerror(errno));
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return idm_fail(why, IDM_ERR_IO, "%s: exists and is not a directory", dir);
  return IDM_OK;
}

idm_err_t idm_path_join(char *out, size_t cap, const char *dir, const char *rel) {
  int n = rel[0] == '/' || !dir || !dir[0] ? snprintf(out, cap, "%s", rel)
                                           : snprintf(out, cap, "%s/%s", dir, rel);
  return n < 0 || (size_t)n >= cap ? IDM_ERR_NOSPACE : IDM_OK;
}
