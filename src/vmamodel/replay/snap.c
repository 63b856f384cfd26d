/* vmamodel record: the preloaded helper that snapshots the recorded process from inside.
 *
 * Loaded with LD_PRELOAD into the recorded program. Its constructor runs once the dynamic
 * loader has mapped and relocated every library, before the program's own constructors: it
 * copies /proc/self/smaps to $VMAMODEL_RECORD_DIR/start.smaps. Its destructor (exit(3), or
 * the return from main) copies it again to end.smaps. The openat() of each output file is
 * the marker the replay looks for in the strace log: the calls before the start marker are
 * already in the start snapshot, the calls after the end marker are not in the end one.
 *
 * Only raw system calls and static buffers: nothing here allocates or maps memory, so the
 * snapshots show exactly what the program's own calls made. The constructor hides the two
 * environment variables from the program's children (renaming them in place), so that only
 * the first process takes snapshots; the destructor acts only in that process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static char out_dir[4096];
static char out_path[4200];
static char buf[1 << 16];
static long owner_pid;

static long sys(long nr, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static void snapshot(const char *name)
{
    size_t n = 0;
    for (const char *p = out_dir; *p && n < sizeof(out_path) - 64; p++)
        out_path[n++] = *p;
    out_path[n++] = '/';
    for (const char *p = name; *p; p++)
        out_path[n++] = *p;
    out_path[n] = 0;
    long out = sys(SYS_openat, AT_FDCWD, (long)out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644);
    if (out < 0)
        return;
    long in = sys(SYS_openat, AT_FDCWD, (long)"/proc/self/smaps", O_RDONLY | O_CLOEXEC, 0);
    if (in >= 0) {
        long got;
        while ((got = sys(SYS_read, in, (long)buf, sizeof(buf), 0)) > 0) {
            long done = 0;
            while (done < got) {
                long put = sys(SYS_write, out, (long)(buf + done), got - done, 0);
                if (put <= 0)
                    break;
                done += put;
            }
        }
        sys(SYS_close, in, 0, 0, 0);
    }
    sys(SYS_close, out, 0, 0, 0);
}

__attribute__((constructor)) static void vmamodel_record_start(void)
{
    const char *dir = 0;
    for (char **e = environ; e && *e; e++) {
        if (starts_with(*e, "VMAMODEL_RECORD_DIR=")) {
            dir = *e + 20;
            (*e)[0] = '_';
        } else if (starts_with(*e, "LD_PRELOAD=")) {
            (*e)[0] = '_';
        }
    }
    if (!dir || !*dir)
        return;
    size_t n = 0;
    while (dir[n] && n < sizeof(out_dir) - 1) {
        out_dir[n] = dir[n];
        n++;
    }
    out_dir[n] = 0;
    owner_pid = sys(SYS_getpid, 0, 0, 0, 0);
    snapshot("start.smaps");
}

__attribute__((destructor)) static void vmamodel_record_end(void)
{
    if (owner_pid && sys(SYS_getpid, 0, 0, 0, 0) == owner_pid)
        snapshot("end.smaps");
}
