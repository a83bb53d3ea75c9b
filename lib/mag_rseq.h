/*
 * mag_rseq.h - the magazine layer's restartable sequences (x86-64).
 *
 * Three critical sections on one CPU's magazine state (struct mag_cpu):
 *
 *   mag_rseq_pop      take the top round of the loaded magazine
 *   mag_rseq_push     put a round on top of the loaded magazine
 *   mag_rseq_install  make another magazine the loaded one
 *
 * Each one stores the address of its descriptor into this thread's rseq
 * area, checks that the thread still runs on the CPU whose state it was
 * given, and ends in exactly one store, its commit.  If the thread is
 * preempted, migrated or signalled before the commit, the kernel moves
 * it to the abort handler and nothing was changed (a store made before
 * the commit only writes a magazine slot above the current top, or a
 * magazine that is not yet visible).  So these sections execute no
 * atomic read-modify-write and take no lock, yet two threads of one CPU
 * never interleave inside them.
 *
 * Layout they rely on (checked in magazine.c):
 *   struct mag_cpu: loaded at 0, allocs at 8, frees at 16, cap at 24
 *   struct mag:     base at 0, rounds[] at 8
 *   rounds in the loaded magazine n = frees - allocs + base (mod 2^64);
 *   cap 0 sends every operation to the slow path (a flush is running),
 *   and pop and push read cap before anything else (see magazine.c).
 *   struct rseq:    cpu_id at 4, rseq_cs at 8
 *
 * pop returns the round or NULL, push true or false: NULL / false mean
 * "empty / full, or preempted": the caller's slow path sorts that out.
 * install returns MAG_RSEQ_OK, or MAG_RSEQ_ABORT (preempted, or not on
 * that CPU).
 */
#ifndef KMEM_MAG_RSEQ_H
#define KMEM_MAG_RSEQ_H

#include <stdbool.h>
#include <stdint.h>

#define MAG_RSEQ_OK     0
#define MAG_RSEQ_ABORT  2

#if defined(__x86_64__)
#define MAG_RSEQ_SUPPORTED 1

#include <sys/rseq.h>
_Static_assert(RSEQ_SIG == 0x53053053, "unexpected x86-64 rseq signature");

/* Descriptor (start, commit, abort), and its address into rseq_cs. */
#define MAG_RSEQ_ENTER                                                  \
	".pushsection __rseq_cs, \"aw\"\n\t"                            \
	".balign 32\n\t"                                                \
	"3:\n\t"                                                        \
	".long 0x0, 0x0\n\t"                                            \
	".quad 1f, (2f - 1f), 4f\n\t"                                   \
	".popsection\n\t"                                               \
	".pushsection __rseq_cs_ptr_array, \"aw\"\n\t"                  \
	".quad 3b\n\t"                                                  \
	".popsection\n\t"                                               \
	"leaq 3b(%%rip), %%rax\n\t"                                     \
	"movq %%rax, %%fs:8(%[rs])\n\t"                                 \
	"1:\n\t"                                                        \
	"cmpl %k[cpu], %%fs:4(%[rs])\n\t"                               \
	"jnz 4f\n\t"

/* After the commit: OK; the slow exit at 5; the abort handler at 4. */
#define MAG_RSEQ_LEAVE                                                  \
	"2:\n\t"                                                        \
	"xorl %k[st], %k[st]\n\t"                                       \
	"jmp 6f\n\t"                                                    \
	"5:\n\t"                                                        \
	"movl $1, %k[st]\n\t"                                           \
	"jmp 6f\n\t"                                                    \
	".pushsection __rseq_failure, \"ax\"\n\t"                       \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                    \
	".long 0x53053053\n\t"                                          \
	"4:\n\t"                                                        \
	"movl $2, %k[st]\n\t"                                           \
	"jmp 6f\n\t"                                                    \
	".popsection\n\t"                                               \
	"6:\n\t"

/*
 * The fast paths find their CPU inside the critical section: once
 * rseq_cs is set, any preemption or migration aborts the section, so the
 * cpu_id_start read after label 1 stays true until the commit and needs
 * no check against cpu_id.  That CPU's struct mag_cpu is cpus + cpu * 128,
 * computed into the cpus operand itself ([pc], an in-out copy).  Scratch
 * registers are fixed (and clobbered), five of them: with the two
 * operands that is every caller-saved register but rdi and rsi, which
 * hold the caller's arguments for its slow path, so no callee-saved
 * register, and so no stack frame, is needed.
 */
#define MAG_RSEQ_FAST_ENTER(abort)                                      \
	".pushsection __rseq_cs, \"aw\"\n\t"                            \
	".balign 32\n\t"                                                \
	"3:\n\t"                                                        \
	".long 0x0, 0x0\n\t"                                            \
	".quad 1f, (2f - 1f), " abort "\n\t"                            \
	".popsection\n\t"                                               \
	".pushsection __rseq_cs_ptr_array, \"aw\"\n\t"                  \
	".quad 3b\n\t"                                                  \
	".popsection\n\t"                                               \
	"leaq 3b(%%rip), %%rcx\n\t"                                     \
	"movq %%rcx, %%fs:8(%[rs])\n\t"                                 \
	"1:\n\t"                                                        \
	"movl %%fs:(%[rs]), %%ecx\n\t"          /* cpu_id_start */      \
	"shlq $7, %%rcx\n\t"                                            \
	"addq %%rcx, %[pc]\n\t"                 /* pc = this CPU's */

/*
 * The popped round, or NULL (empty, or preempted: take the slow path).
 * Rounds are never NULL, so the caller's test of the result folds into
 * the branch to 'empty' (asm goto with an output).
 */
static inline void *
mag_rseq_pop(void *cpus, intptr_t rseq_off)
{
	void *obj;

	__asm__ __volatile__ goto(
	    MAG_RSEQ_FAST_ENTER("4f")
	    "movq 24(%[pc]), %%r10\n\t"         /* cap, first: see magazine.c */
	    "movq (%[pc]), %%r8\n\t"            /* loaded */
	    "movq 8(%[pc]), %%r9\n\t"           /* allocs */
	    "movq 16(%[pc]), %%rcx\n\t"         /* frees */
	    "subq %%r9, %%rcx\n\t"
	    "addq (%%r8), %%rcx\n\t"            /* n = frees - allocs + base */
	    "subq $1, %%rcx\n\t"
	    "cmpq %%r10, %%rcx\n\t"             /* n - 1 >= cap: empty */
	    "jae %l[empty]\n\t"
	    "movq 8(%%r8, %%rcx, 8), %[obj]\n\t"
	    "addq $1, %%r9\n\t"
	    "movq %%r9, 8(%[pc])\n\t"           /* commit: allocs + 1 */
	    "2:\n\t"
	    ".pushsection __rseq_failure, \"ax\"\n\t"
	    ".byte 0x0f, 0xb9, 0x3d\n\t"
	    ".long 0x53053053\n\t"
	    "4:\n\t"
	    "jmp %l[empty]\n\t"
	    ".popsection\n\t"
	    : [obj] "=&a" (obj), [pc] "+r" (cpus)
	    : [rs] "r" (rseq_off)
	    : "rcx", "r8", "r9", "r10", "memory", "cc"
	    : empty);
	if (obj == NULL)
		__builtin_unreachable();
	return (obj);
empty:
	return (NULL);
}

/* Push obj; false when the magazine is full or the thread was preempted. */
static inline bool
mag_rseq_push(void *cpus, intptr_t rseq_off, void *obj)
{
	__asm__ __volatile__ goto(
	    MAG_RSEQ_FAST_ENTER("4f")
	    "movq 24(%[pc]), %%r10\n\t"         /* cap, first: see magazine.c */
	    "movq (%[pc]), %%r8\n\t"            /* loaded */
	    "movq 16(%[pc]), %%r9\n\t"          /* frees */
	    "movq %%r9, %%rcx\n\t"
	    "subq 8(%[pc]), %%rcx\n\t"
	    "addq (%%r8), %%rcx\n\t"            /* n = frees - allocs + base */
	    "cmpq %%r10, %%rcx\n\t"             /* n >= cap: full */
	    "jae %l[slow]\n\t"
	    "movq %[obj], 8(%%r8, %%rcx, 8)\n\t"
	    "addq $1, %%r9\n\t"
	    "movq %%r9, 16(%[pc])\n\t"          /* commit: frees + 1 */
	    "2:\n\t"
	    ".pushsection __rseq_failure, \"ax\"\n\t"
	    ".byte 0x0f, 0xb9, 0x3d\n\t"
	    ".long 0x53053053\n\t"
	    "4:\n\t"
	    "jmp %l[slow]\n\t"
	    ".popsection\n\t"
	    : [pc] "+r" (cpus)
	    : [rs] "r" (rseq_off), [obj] "r" (obj)
	    : "rcx", "r8", "r9", "r10", "memory", "cc"
	    : slow);
	return (true);
slow:
	return (false);
}

/*
 * Make 'mag' (holding 'rounds' rounds, not visible to any other CPU) the
 * loaded magazine; return the previous one and its rounds at that moment.
 */
static inline int
mag_rseq_install(void *pc, uint32_t cpu, intptr_t rseq_off, void *mag,
    uint64_t rounds, void **oldp, uint64_t *old_roundsp)
{
	uint64_t st, old, d, oc;

	__asm__ __volatile__(
	    MAG_RSEQ_ENTER
	    "movq (%[pc]), %[old]\n\t"          /* loaded */
	    "movq 16(%[pc]), %[d]\n\t"
	    "subq 8(%[pc]), %[d]\n\t"           /* d = frees - allocs */
	    "movq (%[old]), %[oc]\n\t"
	    "addq %[d], %[oc]\n\t"              /* old rounds = d + base */
	    "movq %[rounds], %%rax\n\t"
	    "subq %[d], %%rax\n\t"
	    "movq %%rax, (%[mag])\n\t"          /* mag->base = rounds - d */
	    "movq %[mag], (%[pc])\n\t"          /* commit: loaded = mag */
	    MAG_RSEQ_LEAVE
	    : [st] "=&r" (st), [old] "=&r" (old), [d] "=&r" (d), [oc] "=&r" (oc)
	    : [rs] "r" (rseq_off), [cpu] "r" (cpu), [pc] "r" (pc),
	      [mag] "r" (mag), [rounds] "r" (rounds)
	    : "rax", "memory", "cc");
	*oldp = (void *)old;
	*old_roundsp = oc;
	return ((int)st);
}

#else
#define MAG_RSEQ_SUPPORTED 0
/* No rseq fast path here: caches run in lock mode, these are not reached. */
static inline void *
mag_rseq_pop(void *cpus, intptr_t rseq_off)
{
	(void) cpus; (void) rseq_off;
	return (NULL);
}

static inline bool
mag_rseq_push(void *cpus, intptr_t rseq_off, void *obj)
{
	(void) cpus; (void) rseq_off; (void) obj;
	return (false);
}
#endif

#endif /* KMEM_MAG_RSEQ_H */
