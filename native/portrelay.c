/*
 * skiff-portrelay: one port-forward connection into a pod's network namespace.
 *
 *   skiff-portrelay NETNS_PATH PORT      (NETNS_PATH "-" stays in the current namespace)
 *
 * Why a program of its own: a network namespace belongs to a thread, and Node cannot setns(2).
 * This process joins the namespace, connects to 127.0.0.1:PORT (then [::1]:PORT, as "localhost"
 * would), and copies stdin to the socket and the socket to stdout. skiffd starts one per client
 * connection and kills it when the client goes away.
 *
 * Exit: 0 once the socket's side ended (everything it sent is on stdout); 2 on bad arguments;
 * 3 if the namespace cannot be joined; 4 if nothing listens (the reason on stderr, one line).
 * End of stdin half-closes the socket (shutdown SHUT_WR) so the server sees the client's EOF and
 * can still answer. Each direction runs on its own thread: a blocking write in one direction
 * must never stop the other from draining (two peers both writing would otherwise deadlock).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock = -1;

/* Writes all of buf; 0 on success, -1 when the peer is gone. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Copies from in to out until EOF or an error on either side. */
static void copy(int in, int out) {
  static __thread char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (write_all(out, buf, (size_t)n) < 0) return;
  }
}

static void *client_to_socket(void *arg) {
  (void)arg;
  copy(0, sock);
  /* The client finished sending: pass its EOF on, keep reading the answer. */
  shutdown(sock, SHUT_WR);
  return NULL;
}

static int dial(int port) {
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&v4, sizeof v4) == 0) return fd;
  int err4 = errno;
  if (fd >= 0) close(fd);
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&v6, sizeof v6) == 0) return fd;
  if (fd >= 0) close(fd);
  errno = err4; /* the IPv4 reason is the one worth reporting */
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: skiff-portrelay NETNS_PATH|- PORT\n");
    return 2;
  }
  char *end = NULL;
  long port = strtol(argv[2], &end, 10);
  if (!end || *end != '\0' || port < 1 || port > 65535) {
    fprintf(stderr, "invalid port \"%s\"\n", argv[2]);
    return 2;
  }
  /* A closed stdout must show up as EPIPE from write(), not kill us before we clean up. */
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(argv[1], "-") != 0) {
    int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      fprintf(stderr, "cannot enter network namespace %s: %s\n", argv[1], strerror(errno));
      return 3;
    }
    close(ns);
  }
  sock = dial((int)port);
  if (sock < 0) {
    fprintf(stderr, "connect to port %ld: %s\n", port, strerror(errno));
    return 4;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, client_to_socket, NULL) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    return 1;
  }
  /* The server's side ending ends the connection (as containerd's relay: first copy done). */
  copy(sock, 1);
  close(1);
  return 0;
}
