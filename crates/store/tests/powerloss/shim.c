/*
 * The power-loss harness's recorder: an LD_PRELOAD shim that logs, in order, every
 * operation a process makes on files under $SHIM_ROOT that matters for what survives a
 * power cut — opens, writes (with their bytes and offsets), truncations, fsync/fdatasync,
 * sync_file_range (logged, but not durability), renames, unlinks, mkdir/rmdir — plus every
 * write to the acknowledgement file $SHIM_ACK (the child's "this is acknowledged" marks).
 * crates/store/tests/powerloss.rs replays the log into crash images.
 *
 * Each intercepted call runs under one global lock, real call and log record together, so
 * the log's order is an order the kernel could have seen.
 *
 * $SHIM_DROP_FSYNC=<suffix>: fsync/fdatasync on files whose path ends in <suffix> return 0
 * without syncing or being logged (the test of the test: "the fsync was removed").
 * $SHIM_FAIL_FSYNC=<suffix>:<n>: the n-th and every later fsync/fdatasync on such files
 * fails with EIO (to test that a failed fsync is final).
 *
 * Record: u8 op | u32 len, path | u32 len, path2 | u64 a | u64 b | data (b bytes for WRITE
 * and ACK). Little-endian.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_OPEN = 1, OP_WRITE = 2, OP_FSYNC = 3, OP_SFR = 4, OP_RENAME = 5, OP_UNLINK = 6,
       OP_MKDIR = 7, OP_RMDIR = 8, OP_TRUNC = 9, OP_ACK = 10 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char root[PATH_MAX];
static size_t root_len;
static char ack_path[PATH_MAX];
static char drop_suffix[256];
static char fail_suffix[256];
static long fail_after = -1;
static long fail_count = 0;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_open64)(const char *, int, ...);
static int (*real_open)(const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_rmdir)(const char *);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_ftruncate)(int, off_t);

#define LOAD(name) real_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void shim_init(void) {
    LOAD(write); LOAD(pwrite64); LOAD(pwrite); LOAD(writev); LOAD(open64); LOAD(open);
    LOAD(openat64); LOAD(openat); LOAD(fsync); LOAD(fdatasync); LOAD(sync_file_range);
    LOAD(rename); LOAD(renameat); LOAD(renameat2); LOAD(unlink); LOAD(unlinkat);
    LOAD(mkdir); LOAD(mkdirat); LOAD(rmdir); LOAD(ftruncate64); LOAD(ftruncate);
    const char *r = getenv("SHIM_ROOT");
    const char *l = getenv("SHIM_LOG");
    const char *a = getenv("SHIM_ACK");
    const char *d = getenv("SHIM_DROP_FSYNC");
    const char *f = getenv("SHIM_FAIL_FSYNC");
    if (!r || !l) return;
    strncpy(root, r, sizeof root - 1);
    root_len = strlen(root);
    if (a) strncpy(ack_path, a, sizeof ack_path - 1);
    if (d) strncpy(drop_suffix, d, sizeof drop_suffix - 1);
    if (f) {
        const char *colon = strrchr(f, ':');
        if (colon) {
            size_t n = (size_t)(colon - f);
            if (n >= sizeof fail_suffix) n = sizeof fail_suffix - 1;
            memcpy(fail_suffix, f, n);
            fail_after = atol(colon + 1);
        }
    }
    log_fd = real_open64(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void put(const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = real_write(log_fd, c, n);
        if (w <= 0) { if (errno == EINTR) continue; abort(); }
        c += w; n -= (size_t)w;
    }
}

static void record(uint8_t op, const char *path, const char *path2, uint64_t a, uint64_t b,
                   const void *data) {
    uint32_t l1 = path ? (uint32_t)strlen(path) : 0, l2 = path2 ? (uint32_t)strlen(path2) : 0;
    put(&op, 1);
    put(&l1, 4); if (l1) put(path, l1);
    put(&l2, 4); if (l2) put(path2, l2);
    put(&a, 8); put(&b, 8);
    if (data && b) put(data, b);
}

static int under_root(const char *p) {
    return log_fd >= 0 && root_len > 0 && strncmp(p, root, root_len) == 0 &&
           (p[root_len] == '/' || p[root_len] == 0);
}

static int is_ack(const char *p) { return ack_path[0] && strcmp(p, ack_path) == 0; }

static int ends_with(const char *p, const char *suffix) {
    size_t n = strlen(p), s = strlen(suffix);
    return s > 0 && n >= s && strcmp(p + n - s, suffix) == 0;
}

/* The absolute path an fd refers to, or 0. */
static int fd_path(int fd, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0) return 0;
    out[n] = 0;
    return 1;
}

/* An absolute path for (dirfd, path), without resolving the last component. */
static int at_path(int dirfd, const char *path, char *out) {
    if (path[0] == '/') { strncpy(out, path, PATH_MAX - 1); out[PATH_MAX - 1] = 0; return 1; }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) { if (!getcwd(base, sizeof base)) return 0; }
    else if (!fd_path(dirfd, base)) return 0;
    snprintf(out, PATH_MAX, "%s/%s", base, path);
    return 1;
}

static void after_open(int fd, int flags) {
    char p[PATH_MAX];
    if (fd >= 0 && fd_path(fd, p) && under_root(p)) record(OP_OPEN, p, 0, (uint64_t)flags, 0, 0);
}

#define OPEN_MODE(flags, mode) \
    mode_t mode = 0; \
    if ((flags) & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    pthread_mutex_lock(&lock);
    int fd = real_open64(path, flags, mode);
    after_open(fd, flags);
    pthread_mutex_unlock(&lock);
    return fd;
}
int open(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    pthread_mutex_lock(&lock);
    int fd = real_open(path, flags, mode);
    after_open(fd, flags);
    pthread_mutex_unlock(&lock);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    pthread_mutex_lock(&lock);
    int fd = real_openat64(dirfd, path, flags, mode);
    after_open(fd, flags);
    pthread_mutex_unlock(&lock);
    return fd;
}
int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode);
    pthread_mutex_lock(&lock);
    int fd = real_openat(dirfd, path, flags, mode);
    after_open(fd, flags);
    pthread_mutex_unlock(&lock);
    return fd;
}

static void log_write(int fd, off64_t off, const void *buf, ssize_t n) {
    char p[PATH_MAX];
    if (n <= 0 || !fd_path(fd, p)) return;
    if (is_ack(p)) record(OP_ACK, 0, 0, 0, (uint64_t)n, buf);
    else if (under_root(p)) record(OP_WRITE, p, 0, (uint64_t)off, (uint64_t)n, buf);
}

static off64_t current_offset(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) { struct stat st; if (fstat(fd, &st) == 0) return st.st_size; }
    return lseek64(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (log_fd < 0 || fd == log_fd) return real_write(fd, buf, n);
    pthread_mutex_lock(&lock);
    off64_t off = current_offset(fd);
    ssize_t r = real_write(fd, buf, n);
    if (off >= 0) log_write(fd, off, buf, r);
    pthread_mutex_unlock(&lock);
    return r;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    pthread_mutex_lock(&lock);
    ssize_t r = real_pwrite64(fd, buf, n, off);
    log_write(fd, off, buf, r);
    pthread_mutex_unlock(&lock);
    return r;
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    pthread_mutex_lock(&lock);
    ssize_t r = real_pwrite(fd, buf, n, off);
    log_write(fd, off, buf, r);
    pthread_mutex_unlock(&lock);
    return r;
}
ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    pthread_mutex_lock(&lock);
    off64_t off = current_offset(fd);
    ssize_t r = real_writev(fd, iov, cnt);
    if (r > 0 && off >= 0) {
        ssize_t left = r;
        for (int i = 0; i < cnt && left > 0; i++) {
            ssize_t part = (ssize_t)iov[i].iov_len < left ? (ssize_t)iov[i].iov_len : left;
            log_write(fd, off, iov[i].iov_base, part);
            off += part; left -= part;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

static int do_sync(int fd, int (*real)(int)) {
    char p[PATH_MAX];
    pthread_mutex_lock(&lock);
    int have = fd_path(fd, p);
    if (have && drop_suffix[0] && ends_with(p, drop_suffix)) { pthread_mutex_unlock(&lock); return 0; }
    if (have && fail_after >= 0 && ends_with(p, fail_suffix) && ++fail_count >= fail_after) {
        pthread_mutex_unlock(&lock);
        errno = EIO;
        return -1;
    }
    int r = real(fd);
    if (r == 0 && have && under_root(p)) record(OP_FSYNC, p, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return r;
}
int fsync(int fd) { return do_sync(fd, real_fsync); }
int fdatasync(int fd) { return do_sync(fd, real_fdatasync); }

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
    char p[PATH_MAX];
    pthread_mutex_lock(&lock);
    int r = real_sync_file_range(fd, off, n, flags);
    if (r == 0 && fd_path(fd, p) && under_root(p)) record(OP_SFR, p, 0, (uint64_t)off, 0, 0);
    pthread_mutex_unlock(&lock);
    return r;
}

static void log_two(uint8_t op, const char *a, const char *b) {
    if (under_root(a) || under_root(b)) record(op, a, b, 0, 0, 0);
}

int rename(const char *from, const char *to) {
    char a[PATH_MAX], b[PATH_MAX];
    pthread_mutex_lock(&lock);
    int r = real_rename(from, to);
    if (r == 0 && at_path(AT_FDCWD, from, a) && at_path(AT_FDCWD, to, b)) log_two(OP_RENAME, a, b);
    pthread_mutex_unlock(&lock);
    return r;
}
int renameat(int fd1, const char *from, int fd2, const char *to) {
    char a[PATH_MAX], b[PATH_MAX];
    pthread_mutex_lock(&lock);
    int ok1 = at_path(fd1, from, a), ok2 = at_path(fd2, to, b);
    int r = real_renameat(fd1, from, fd2, to);
    if (r == 0 && ok1 && ok2) log_two(OP_RENAME, a, b);
    pthread_mutex_unlock(&lock);
    return r;
}
int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags) {
    char a[PATH_MAX], b[PATH_MAX];
    pthread_mutex_lock(&lock);
    int ok1 = at_path(fd1, from, a), ok2 = at_path(fd2, to, b);
    int r = real_renameat2(fd1, from, fd2, to, flags);
    if (r == 0 && ok1 && ok2) log_two(OP_RENAME, a, b);
    pthread_mutex_unlock(&lock);
    return r;
}

static void log_one(uint8_t op, int dirfd, const char *path, int r) {
    char a[PATH_MAX];
    if (r == 0 && at_path(dirfd, path, a) && under_root(a)) record(op, a, 0, 0, 0, 0);
}

int unlink(const char *path) {
    pthread_mutex_lock(&lock);
    char a[PATH_MAX]; int ok = at_path(AT_FDCWD, path, a);
    int r = real_unlink(path);
    if (r == 0 && ok && under_root(a)) record(OP_UNLINK, a, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return r;
}
int unlinkat(int dirfd, const char *path, int flags) {
    pthread_mutex_lock(&lock);
    char a[PATH_MAX]; int ok = at_path(dirfd, path, a);
    int r = real_unlinkat(dirfd, path, flags);
    if (r == 0 && ok && under_root(a)) record((flags & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, a, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return r;
}
int mkdir(const char *path, mode_t mode) {
    pthread_mutex_lock(&lock);
    int r = real_mkdir(path, mode);
    log_one(OP_MKDIR, AT_FDCWD, path, r);
    pthread_mutex_unlock(&lock);
    return r;
}
int mkdirat(int dirfd, const char *path, mode_t mode) {
    pthread_mutex_lock(&lock);
    int r = real_mkdirat(dirfd, path, mode);
    log_one(OP_MKDIR, dirfd, path, r);
    pthread_mutex_unlock(&lock);
    return r;
}
int rmdir(const char *path) {
    pthread_mutex_lock(&lock);
    char a[PATH_MAX]; int ok = at_path(AT_FDCWD, path, a);
    int r = real_rmdir(path);
    if (r == 0 && ok && under_root(a)) record(OP_RMDIR, a, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return r;
}

static void log_trunc(int fd, off64_t len, int r) {
    char p[PATH_MAX];
    if (r == 0 && fd_path(fd, p) && under_root(p)) record(OP_TRUNC, p, 0, (uint64_t)len, 0, 0);
}
int ftruncate64(int fd, off64_t len) {
    pthread_mutex_lock(&lock);
    int r = real_ftruncate64(fd, len);
    log_trunc(fd, len, r);
    pthread_mutex_unlock(&lock);
    return r;
}
int ftruncate(int fd, off_t len) {
    pthread_mutex_lock(&lock);
    int r = real_ftruncate(fd, len);
    log_trunc(fd, len, r);
    pthread_mutex_unlock(&lock);
    return r;
}
