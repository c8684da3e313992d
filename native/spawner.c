/*
 * skiff-spawner: runs commands on behalf of skiffd.
 *
 * Why: Node starts a child with fork(), whose cost grows with the parent's resident memory
 * (page tables are copied), and it runs on the event loop's thread. A daemon of ~100-200 MiB
 * pays several milliseconds per spawn, blocking everything else meanwhile. This process is
 * small, so its fork() is cheap; skiffd starts it once, early, and sends it requests.
 *
 * Protocol (stdin → requests, stdout → replies), little-endian, each frame `u32 length` then:
 *   run:   u8 op=1, u32 id, u32 flags (bit 0: own session, like Node's `detached`),
 *          u32 max_output, u32 argc, argc × str, u32 envc, envc × str, str cwd, str input
 *   kill:  u8 op=2, u32 id, u32 signal (to the process group when the job has its own session)
 *   reply: u32 id, u8 kind (0 exited, 1 could not start), i32 exit code (-1 if signaled),
 *          i32 signal, u32 pid, str stdout, str stderr, str error
 * where str = u32 length + bytes. Output beyond max_output is read and dropped.
 * When stdin closes (skiffd is gone) the spawner exits; running children are left alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void buf_put(buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) _exit(70);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void put_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void put_str(buf *b, const char *d, size_t n) {
  put_u32(b, (uint32_t)n);
  buf_put(b, d, n);
}
static void buf_drop(buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

struct job {
  int used;
  uint32_t id;
  pid_t pid;
  int session;
  int in_fd, out_fd, err_fd;
  buf in;
  size_t in_off;
  buf out, err;
  size_t max;
  int exited, status;
};

#define MAXJOBS 512
static struct job jobs[MAXJOBS];
static buf rx, tx;
static int sig_pipe[2];

static void on_sigchld(int s) {
  (void)s;
  int e = errno;
  char c = 0;
  if (write(sig_pipe[1], &c, 1) < 0) { /* full: a wake-up is pending anyway */ }
  errno = e;
}

/* Reader over one request payload; `ok` drops to 0 on a short frame. */
typedef struct {
  const char *p;
  size_t left;
  int ok;
} rd;
static uint32_t get_u32(rd *r) {
  uint32_t v = 0;
  if (r->left < 4) { r->ok = 0; return 0; }
  memcpy(&v, r->p, 4);
  r->p += 4;
  r->left -= 4;
  return v;
}
/* A NUL-terminated copy (callers free it). */
static char *get_str(rd *r, size_t *len) {
  uint32_t n = get_u32(r);
  if (!r->ok || r->left < n) { r->ok = 0; return NULL; }
  char *s = malloc(n + 1);
  if (!s) _exit(70);
  memcpy(s, r->p, n);
  s[n] = 0;
  r->p += n;
  r->left -= n;
  if (len) *len = n;
  return s;
}

static void reply(uint32_t id, int kind, int code, int sig, pid_t pid, buf *out, buf *err, const char *msg) {
  buf f = {0};
  put_u32(&f, id);
  uint8_t k = (uint8_t)kind;
  buf_put(&f, &k, 1);
  int32_t c = code, s = sig;
  buf_put(&f, &c, 4);
  buf_put(&f, &s, 4);
  put_u32(&f, (uint32_t)pid);
  put_str(&f, out ? out->p : "", out ? out->len : 0);
  put_str(&f, err ? err->p : "", err ? err->len : 0);
  put_str(&f, msg, strlen(msg));
  put_u32(&tx, (uint32_t)f.len);
  buf_put(&tx, f.p, f.len);
  free(f.p);
}

static void free_job(struct job *j) {
  free(j->in.p);
  free(j->out.p);
  free(j->err.p);
  memset(j, 0, sizeof *j);
}

static void start_job(rd *r) {
  uint32_t id = get_u32(r), flags = get_u32(r), max = get_u32(r), argc = get_u32(r);
  if (!r->ok || argc == 0 || argc > 65536) return;
  char **argv = calloc(argc + 1, sizeof(char *));
  for (uint32_t i = 0; i < argc; i++) argv[i] = get_str(r, NULL);
  uint32_t envc = get_u32(r);
  char **envp = calloc((size_t)envc + 1, sizeof(char *));
  for (uint32_t i = 0; r->ok && i < envc; i++) envp[i] = get_str(r, NULL);
  char *cwd = get_str(r, NULL);
  size_t in_len = 0;
  char *input = get_str(r, &in_len);
  struct job *j = NULL;
  for (int i = 0; i < MAXJOBS; i++)
    if (!jobs[i].used) { j = &jobs[i]; break; }
  char msg[256] = "";
  int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
  if (!r->ok) snprintf(msg, sizeof msg, "malformed request");
  else if (!j) snprintf(msg, sizeof msg, "too many running commands");
  else if (pipe2(in_p, O_CLOEXEC) || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(st_p, O_CLOEXEC))
    snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
  pid_t pid = -1;
  if (!msg[0]) {
    pid = fork();
    if (pid < 0) snprintf(msg, sizeof msg, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (flags & 1) setsid();
    dup2(in_p[0], 0);
    dup2(out_p[1], 1);
    dup2(err_p[1], 2);
    int e = 0;
    if (cwd[0] && chdir(cwd) != 0) e = errno;
    if (!e) {
      execvpe(argv[0], argv, envp);
      e = errno;
    }
    if (write(st_p[1], &e, sizeof e) < 0) { /* nothing more to do */ }
    _exit(127);
  }
  if (pid > 0) {
    close(st_p[1]);
    st_p[1] = -1;
    int e = 0;
    ssize_t n;
    do n = read(st_p[0], &e, sizeof e); while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof e) {
      snprintf(msg, sizeof msg, "spawn %s %s", argv[0], e == ENOENT ? "ENOENT" : strerror(e));
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
      pid = -1;
    }
  }
  for (int *fd = st_p; fd < st_p + 2; fd++) if (*fd >= 0) close(*fd);
  close(in_p[0] >= 0 ? in_p[0] : -1);
  close(out_p[1] >= 0 ? out_p[1] : -1);
  close(err_p[1] >= 0 ? err_p[1] : -1);
  if (pid > 0) {
    j->used = 1;
    j->id = id;
    j->pid = pid;
    j->session = flags & 1;
    j->in_fd = in_p[1];
    j->out_fd = out_p[0];
    j->err_fd = err_p[0];
    j->max = max;
    buf_put(&j->in, input, in_len);
    j->in_off = 0;
    for (int *fd = &j->in_fd; fd <= &j->err_fd; fd++) fcntl(*fd, F_SETFL, O_NONBLOCK);
    if (in_len == 0) {
      close(j->in_fd);
      j->in_fd = -1;
    }
  } else {
    for (int *fd = in_p + 1; fd < in_p + 2; fd++) if (*fd >= 0) close(*fd);
    if (out_p[0] >= 0) close(out_p[0]);
    if (err_p[0] >= 0) close(err_p[0]);
    reply(id, 1, -1, 0, 0, NULL, NULL, msg);
  }
  for (uint32_t i = 0; i < argc; i++) free(argv[i]);
  for (uint32_t i = 0; i < envc; i++) free(envp[i]);
  free(argv);
  free(envp);
  free(cwd);
  free(input);
}

static void kill_job(rd *r) {
  uint32_t id = get_u32(r), sig = get_u32(r);
  if (!r->ok) return;
  for (int i = 0; i < MAXJOBS; i++) {
    struct job *j = &jobs[i];
    if (!j->used || j->id != id || j->exited) continue;
    if (j->session) kill(-j->pid, (int)sig);
    kill(j->pid, (int)sig);
  }
}

static void handle_requests(void) {
  while (rx.len >= 4) {
    uint32_t n;
    memcpy(&n, rx.p, 4);
    if (rx.len < 4 + (size_t)n) return;
    rd r = {rx.p + 4, n, 1};
    uint32_t op8 = 0;
    if (r.left >= 1) {
      op8 = (uint8_t)r.p[0];
      r.p++;
      r.left--;
    }
    if (op8 == 1) start_job(&r);
    else if (op8 == 2) kill_job(&r);
    buf_drop(&rx, 4 + (size_t)n);
  }
}

static void drain(int *fd, buf *b, size_t max) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      size_t keep = b->len < max ? max - b->len : 0;
      buf_put(b, chunk, (size_t)n < keep ? (size_t)n : keep);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(*fd);
    *fd = -1;
    return;
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK)) return 71;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  fcntl(1, F_SETFL, O_NONBLOCK);
  int in_open = 1;
  static struct pollfd pf[3 + 3 * MAXJOBS];
  static struct job *owner[3 + 3 * MAXJOBS];
  static int kind[3 + 3 * MAXJOBS];
  for (;;) {
    int n = 0;
    pf[n] = (struct pollfd){sig_pipe[0], POLLIN, 0};
    owner[n] = NULL;
    kind[n++] = 0;
    if (in_open) {
      pf[n] = (struct pollfd){0, POLLIN, 0};
      owner[n] = NULL;
      kind[n++] = 1;
    }
    if (tx.len) {
      pf[n] = (struct pollfd){1, POLLOUT, 0};
      owner[n] = NULL;
      kind[n++] = 2;
    }
    for (int i = 0; i < MAXJOBS; i++) {
      struct job *j = &jobs[i];
      if (!j->used) continue;
      if (j->in_fd >= 0) pf[n] = (struct pollfd){j->in_fd, POLLOUT, 0}, owner[n] = j, kind[n++] = 3;
      if (j->out_fd >= 0) pf[n] = (struct pollfd){j->out_fd, POLLIN, 0}, owner[n] = j, kind[n++] = 4;
      if (j->err_fd >= 0) pf[n] = (struct pollfd){j->err_fd, POLLIN, 0}, owner[n] = j, kind[n++] = 5;
    }
    if (!in_open && !tx.len) return 0;
    if (poll(pf, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      return 72;
    }
    for (int i = 0; i < n; i++) {
      if (!pf[i].revents) continue;
      struct job *j = owner[i];
      switch (kind[i]) {
        case 0: {
          char c[64];
          while (read(sig_pipe[0], c, sizeof c) > 0) {}
          int st;
          pid_t p;
          while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            for (int k = 0; k < MAXJOBS; k++)
              if (jobs[k].used && jobs[k].pid == p) jobs[k].exited = 1, jobs[k].status = st;
          }
          break;
        }
        case 1: {
          char chunk[65536];
          ssize_t r = read(0, chunk, sizeof chunk);
          if (r > 0) {
            buf_put(&rx, chunk, (size_t)r);
            handle_requests();
          } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
            in_open = 0;
          }
          break;
        }
        case 2: {
          ssize_t w = write(1, tx.p, tx.len);
          if (w > 0) buf_drop(&tx, (size_t)w);
          else if (w < 0 && errno != EAGAIN && errno != EINTR) return 73;
          break;
        }
        case 3: {
          ssize_t w = write(j->in_fd, j->in.p + j->in_off, j->in.len - j->in_off);
          if (w > 0) j->in_off += (size_t)w;
          if ((w < 0 && errno != EAGAIN && errno != EINTR) || j->in_off == j->in.len) {
            close(j->in_fd);
            j->in_fd = -1;
          }
          break;
        }
        case 4: drain(&j->out_fd, &j->out, j->max); break;
        case 5: drain(&j->err_fd, &j->err, j->max); break;
      }
    }
    for (int i = 0; i < MAXJOBS; i++) {
      struct job *j = &jobs[i];
      if (!j->used || !j->exited || j->out_fd >= 0 || j->err_fd >= 0) continue;
      if (j->in_fd >= 0) close(j->in_fd);
      int code = WIFEXITED(j->status) ? WEXITSTATUS(j->status) : -1;
      int sig = WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0;
      reply(j->id, 0, code, sig, j->pid, &j->out, &j->err, "");
      free_job(j);
    }
  }
}
