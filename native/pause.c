/*
 * skiff's pause program: the first process of every pod sandbox. It holds the pod's namespaces
 * open and, as PID 1 of a shared PID namespace, reaps orphaned children.
 *
 * SIGINT and SIGTERM end it with status 0 (a PID 1 ignores signals it has no handler for, so
 * the handlers are what make it stoppable). SIGCHLD reaps every exited child. Otherwise it
 * sleeps in pause() forever. Static, no allocation, no output unless asked (-v).
 *
 * Build: gcc -Os -static -o pause native/pause.c
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  int saved = errno;
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int install(int sig, void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    static const char version[] = "skiff pause 1.0\n";
    (void)!write(STDOUT_FILENO, version, sizeof version - 1);
    return 0;
  }
  if (install(SIGINT, on_stop, 0) < 0 || install(SIGTERM, on_stop, 0) < 0 ||
      install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
    static const char msg[] = "pause: sigaction failed\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    return 1;
  }
  on_child(0); /* children that exited before the handler was installed */
  for (;;) pause();
  return 42; /* unreachable */
}
