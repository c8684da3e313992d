/**
 * skiff's RuntimeDefault seccomp profile: an allow-list in the spirit of containerd's and moby's
 * default. Everything not listed fails with EPERM. What a container could use to escape or
 * to reach host-wide kernel state (mount, namespaces, modules, keyrings, reboot, clock, BPF,
 * perf) is only allowed when the container holds the capability the kernel itself would
 * require, so dropping or adding a capability keeps seccomp and capabilities consistent.
 *
 * The profile is computed per container from its final bounding set; it is data, not policy
 * code: add a syscall to the list whose condition matches.
 */

/** The OCI runtime spec's `linux.seccomp`. */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls: {
    names: string[];
    action: string;
    errnoRet?: number;
    args?: { index: number; value: number; valueTwo: number; op: string }[];
  }[];
}

const EPERM = 1;
const ENOSYS = 38;

/** Syscalls any container may make (names unknown on an architecture are skipped by runc). */
const ALWAYS = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr
lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2 pause
pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
ptrace pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64
send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid
setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice
stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`;

/**
 * Syscalls allowed only with a capability. ptrace is in ALWAYS: since Linux 4.8 a traced
 * process can no longer use it to slip past its tracee's seccomp filter.
 */
const BY_CAPABILITY: Record<string, string> = {
  CAP_SYS_ADMIN: `bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
    mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl quotactl_fd
    setdomainname sethostname setns syslog umount umount2 unshare`,
  CAP_DAC_READ_SEARCH: "open_by_handle_at",
  CAP_SYS_BOOT: "reboot",
  CAP_SYS_CHROOT: "chroot",
  CAP_SYS_MODULE: "delete_module init_module finit_module",
  CAP_SYS_PACCT: "acct",
  CAP_SYS_PTRACE: "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev",
  CAP_SYS_RAWIO: "iopl ioperm",
  CAP_SYS_TIME: "settimeofday stime clock_settime clock_settime64",
  CAP_SYS_TTY_CONFIG: "vhangup",
  CAP_SYS_NICE: "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
  CAP_SYSLOG: "syslog",
  CAP_BPF: "bpf",
  CAP_PERFMON: "perf_event_open",
};

/** Per-architecture extras: syscalls only these ABIs have, all harmless. */
const BY_ARCH: Record<string, string> = {
  x64: "arch_prctl",
  arm64: "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
};

/** The seccomp architectures a process of this host may use (native plus compat ABIs). */
const ARCHES: Record<string, string[]> = {
  x64: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  arm64: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
};

/**
 * The clone flags that create namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
 * NEWNET): without CAP_SYS_ADMIN clone is allowed only when none of them is set.
 */
const CLONE_NEW_FLAGS = 0x7e020000;

/** personality(2) values allowed: Linux, Linux32, UNAME26 variants and the query value. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const words = (s: string) => s.split(/\s+/).filter(Boolean);

/** Every syscall name the profile may allow on some architecture or capability (for tests). */
export function knownProfileSyscalls(): string[] {
  return [...words(ALWAYS), ...Object.values(BY_CAPABILITY).flatMap(words), ...Object.values(BY_ARCH).flatMap(words), "clone", "clone3", "personality"];
}

/**
 * The RuntimeDefault profile for a process whose bounding set is `caps` ("CAP_*" names) on
 * Node's `arch` ("x64", "arm64"; others get the native architecture only).
 */
export function defaultSeccompProfile(caps: string[], arch: string): SeccompProfile {
  const has = new Set(caps);
  const allowed = new Set([...words(ALWAYS), ...words(BY_ARCH[arch] ?? "")]);
  for (const [cap, names] of Object.entries(BY_CAPABILITY)) if (has.has(cap)) for (const n of words(names)) allowed.add(n);
  const syscalls: SeccompProfile["syscalls"] = [{ names: [...allowed].sort(), action: "SCMP_ACT_ALLOW" }];
  for (const value of PERSONALITIES) {
    syscalls.push({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value, valueTwo: 0, op: "SCMP_CMP_EQ" }] });
  }
  if (!has.has("CAP_SYS_ADMIN")) {
    // Plain fork-like clones stay possible; clone3 passes its flags in memory seccomp cannot
    // read, so it fails with ENOSYS and libc falls back to clone.
    syscalls.push({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NEW_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] });
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: EPERM,
    ...(ARCHES[arch] ? { architectures: ARCHES[arch] } : {}),
    syscalls,
  };
}
