/* io_uring unavailable (a seccomp profile that refuses io_uring_setup, as container
 * runtimes do): `idmint serve` must say so in one plain line and exit non-zero, before
 * touching its configuration. The child installs the filter, then execs the real binary. */
#include <criterion/criterion.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

static void deny_io_uring(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1 /* EPERM */),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    _exit(99);
}

Test(uring, unavailable_is_one_plain_line_and_exit_1) {
  int pipefd[2];
  cr_assert_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    deny_io_uring();
    execl(IDM_BUILD_DIR "/engine/idmint", "idmint", "serve", "--config", "/nonexistent.conf",
          (char *)NULL);
    _exit(98);
  }
  close(pipefd[1]);
  char buf[2048];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = '\0';
  close(pipefd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  cr_assert(WIFEXITED(st), "idmint did not exit normally");
  if (WEXITSTATUS(st) == 99)
    cr_skip_test("seccomp filters cannot be installed here");
  cr_assert_eq(WEXITSTATUS(st), 1, "exit %d, stderr: %s", WEXITSTATUS(st), buf);
  cr_assert(strstr(buf, "io_uring") != NULL, "%s", buf);
  cr_assert(strchr(buf, '\n') == buf + n - 1, "exactly one line: %s", buf);
  cr_assert(buf[0] != '{', "a plain line, not a JSON log record: %s", buf);
}
