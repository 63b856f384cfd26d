/* vmamodel bench runner: build the slots, run the ops, time each with CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf fault_jump;
static void on_fault(int sig) { siglongjmp(fault_jump, sig); }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t count_maps(void)
{
    static char buf[1 << 16];
    FILE *f = fopen("/proc/self/maps", "r");
    int64_t lines = 0;
    size_t n;
    if (!f)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    fclose(f);
    return lines;
}

static int64_t *slurp(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    long size;
    int64_t *data;
    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        exit(2);
    data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != (size_t)size)
        exit(2);
    fclose(f);
    *count = size / 8;
    return data;
}

static long call(long nr, long a, long b, long c, long d, long e, long f)
{
    return syscall(nr, a, b, c, d, e, f);
}

/* One pass over the ops: (ns, errno) pairs into res. */
static void run_ops(const int64_t *ops, int64_t nops, int64_t base, int64_t *res)
{
    static int64_t regs[64];
    int64_t t0 = 0, t1 = 0;
    for (int64_t k = 0; k < nops; k++) {
        const int64_t *op = ops + 6 * k;
        int64_t a = op[1], b = op[2], c = op[3], d = op[4], e = op[5];
        volatile char *touch;
        long r = 0;
        switch (op[0]) {
        case 0:
            t0 = now_ns();
            r = call(SYS_mmap, base + a, b, c, d, -1, 0);
            t1 = now_ns();
            break;
        case 1:
            t0 = now_ns();
            r = call(SYS_mmap, 0, b, c, d, -1, 0);
            t1 = now_ns();
            if (r != -1)
                regs[a] = r;
            break;
        case 2:
            t0 = now_ns();
            r = call(SYS_munmap, base + a, b, 0, 0, 0, 0);
            t1 = now_ns();
            break;
        case 3:
            t0 = now_ns();
            r = call(SYS_munmap, regs[a], b, 0, 0, 0, 0);
            t1 = now_ns();
            break;
        case 4:
            t0 = now_ns();
            r = call(SYS_mprotect, base + a, b, c, 0, 0, 0);
            t1 = now_ns();
            break;
        case 5:
            t0 = now_ns();
            r = call(SYS_mremap, base + a, b, c, d, d & MREMAP_FIXED ? base + e : 0, 0);
            t1 = now_ns();
            break;
        case 6:
            touch = (volatile char *)(base + a);
            if (sigsetjmp(fault_jump, 1)) {
                t1 = now_ns();
                r = -1;
                errno = EFAULT;
                break;
            }
            t0 = now_ns();
            if (b)
                *touch = 0;
            else
                (void)*touch;
            t1 = now_ns();
            break;
        case 7:
            t0 = now_ns();
            r = call(SYS_madvise, base + a, b, c, 0, 0, 0);
            t1 = now_ns();
            break;
        default:
            exit(4);
        }
        res[2 * k] = t1 - t0;
        res[2 * k + 1] = r == -1 ? errno : 0;
    }
}

int main(int argc, char **argv)
{
    size_t count;
    int64_t *in, *out, *res;
    int64_t base, slots, slot_bytes, vma_bytes, nops, repeats, t0, t1, best = INT64_MAX;
    struct sigaction sa;

    if (argc != 3)
        return 2;
    in = slurp(argv[1], &count);
    base = in[0], slots = in[1], slot_bytes = in[2], vma_bytes = in[3], nops = in[4];
    repeats = in[5];
    out = calloc(5 + 2 * nops, sizeof(*out));
    res = calloc(2 * nops + 1, sizeof(*res));
    if (!out || !res || count < (size_t)(6 + 6 * nops))
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    for (int i = 0; i < 1000; i++) {
        t0 = now_ns();
        t1 = now_ns();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    out[1] = best;
    out[2] = best;
    out[3] = count_maps();
    t0 = now_ns();
    for (int64_t i = 0; i < slots; i++)
        if (call(SYS_mmap, base + i * slot_bytes, vma_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == -1)
            return 3;
    out[0] = now_ns() - t0;
    for (int64_t rep = 0; rep < repeats; rep++) {
        run_ops(in + 6, nops, base, res);
        for (int64_t k = 0; k < nops; k++)
            if (rep == 0 || res[2 * k] < out[5 + 2 * k])
                out[5 + 2 * k] = res[2 * k];
        if (rep == 0)
            for (int64_t k = 0; k < nops; k++)
                out[6 + 2 * k] = res[2 * k + 1];
    }
    out[4] = count_maps();
    {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fwrite(out, 8, 5 + 2 * nops, f) != (size_t)(5 + 2 * nops))
            return 2;
        fclose(f);
    }
    return 0;
}
