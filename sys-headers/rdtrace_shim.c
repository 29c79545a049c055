/*
 * rdtrace_shim.c - real functions for the FreeBSD KPI macros and inline
 * functions rdtrace uses (see rdtrace_shim.h for the contract).
 *
 * Compiled freestanding for the kernel target by ffi/build.rs with the same
 * code generation as the Rust code (no red zone, no FP/SIMD, kernel code
 * model on amd64, PIC on arm64/riscv64). Keep it small: anything that can be
 * written in Rust belongs in Rust.
 */
#include "rdtrace_shim.h"

/* What FreeBSD's lock macros pass as the caller's file and line. */
static const char shim_file[] = "rdtrace";
#define SHIM_LINE 0

struct thread *
rdtrace_shim_curthread(void)
{
	struct thread *td;
#if defined(__x86_64__)
	/* %gs points at this CPU's struct pcpu; pc_curthread is its first word. */
	__asm__ __volatile__("movq %%gs:0, %0" : "=r"(td));
#elif defined(__aarch64__)
	/* x18 holds this CPU's struct pcpu. */
	__asm__ __volatile__("ldr %0, [x18]" : "=r"(td));
#elif defined(__riscv)
	/* tp holds this CPU's struct pcpu. */
	__asm__ __volatile__("ld %0, 0(tp)" : "=r"(td));
#else
#error "unsupported architecture"
#endif
	return (td);
}

u_int
rdtrace_shim_curcpu(u_int cpuid_offset)
{
	u_int cpu;
	uintptr_t off = cpuid_offset;
#if defined(__x86_64__)
	__asm__ __volatile__("movl %%gs:(%1), %0" : "=r"(cpu) : "r"(off));
#elif defined(__aarch64__)
	__asm__ __volatile__("ldr %w0, [x18, %1]" : "=r"(cpu) : "r"(off));
#elif defined(__riscv)
	uintptr_t addr;
	__asm__ __volatile__("add %0, tp, %1" : "=r"(addr) : "r"(off));
	cpu = *(volatile u_int *)addr;
#endif
	return (cpu);
}

register_t
rdtrace_shim_intr_disable(void)
{
	register_t state;
#if defined(__x86_64__)
	__asm__ __volatile__("pushfq; popq %0; cli" : "=r"(state) : : "memory");
#elif defined(__aarch64__)
	/* Save DAIF, then mask IRQ and FIQ. */
	__asm__ __volatile__("mrs %0, daif; msr daifset, #3" : "=r"(state) : : "memory");
#elif defined(__riscv)
	/* Clear sstatus.SIE (bit 1), keeping its old value. */
	__asm__ __volatile__("csrrci %0, sstatus, 2" : "=r"(state) : : "memory");
	state &= 2;
#endif
	return (state);
}

void
rdtrace_shim_intr_restore(register_t state)
{
#if defined(__x86_64__)
	__asm__ __volatile__("pushq %0; popfq" : : "r"(state) : "memory", "cc");
#elif defined(__aarch64__)
	__asm__ __volatile__("msr daif, %0" : : "r"(state) : "memory");
#elif defined(__riscv)
	__asm__ __volatile__("csrs sstatus, %0" : : "r"(state) : "memory");
#endif
}

void
rdtrace_shim_mtx_init(struct mtx *m, const char *name, int opts)
{
	_mtx_init(&m->mtx_lock, name, 0, opts);
}

void
rdtrace_shim_mtx_lock(struct mtx *m)
{
	__mtx_lock_flags(&m->mtx_lock, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_mtx_unlock(struct mtx *m)
{
	__mtx_unlock_flags(&m->mtx_lock, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_mtx_lock_spin(struct mtx *m)
{
	__mtx_lock_spin_flags(&m->mtx_lock, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_mtx_unlock_spin(struct mtx *m)
{
	__mtx_unlock_spin_flags(&m->mtx_lock, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_mtx_destroy(struct mtx *m)
{
	_mtx_destroy(&m->mtx_lock);
}

void
rdtrace_shim_sx_xlock(struct sx *sx)
{
	(void)_sx_xlock(sx, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_sx_xunlock(struct sx *sx)
{
	_sx_xunlock(sx, shim_file, SHIM_LINE);
}

void
rdtrace_shim_sx_slock(struct sx *sx)
{
	(void)_sx_slock(sx, 0, shim_file, SHIM_LINE);
}

void
rdtrace_shim_sx_sunlock(struct sx *sx)
{
	_sx_sunlock(sx, shim_file, SHIM_LINE);
}

void
rdtrace_shim_critical_enter(void)
{
	critical_enter_KBI();
}

void
rdtrace_shim_critical_exit(void)
{
	critical_exit_KBI();
}

/*
 * _callout_stop_safe() once took a third argument (an asynchronous drain
 * callback, NULL for a synchronous drain) and now takes two. Calling it with
 * a NULL third argument is right for both: on amd64, arm64 and riscv64 the
 * extra argument travels in a register the two-argument version ignores.
 */
typedef int callout_stop_compat_t(struct callout *, int, void (*)(void *));

static int
callout_stop_compat(struct callout *c, int flags)
{
	callout_stop_compat_t *stop = (callout_stop_compat_t *)(void *)_callout_stop_safe;

	return (stop(c, flags, 0));
}

int
rdtrace_shim_callout_drain(struct callout *c)
{
	return (callout_stop_compat(c, CS_DRAIN));
}

int
rdtrace_shim_callout_stop(struct callout *c)
{
	return (callout_stop_compat(c, 0));
}

void
rdtrace_shim_make_dev_args_init(struct make_dev_args *args)
{
	make_dev_args_init_impl(args, sizeof(*args));
}

void
rdtrace_shim_console(const char *message)
{
	printf("%s", message);
}

#if defined(__x86_64__)
/*
 * Referenced weakly: every amd64 kernel has it, and an environment that
 * imitates the kernel without it (the userland module harness) then simply
 * has no SMAP.
 */
extern u_int cpu_stdext_feature __attribute__((__weak__));

int
rdtrace_shim_smap_enabled(void)
{
	if (&cpu_stdext_feature == 0)
		return (0);
	return ((cpu_stdext_feature & CPUID_STDEXT_SMAP) != 0);
}

/*
 * The load instruction and its recovery path have fixed, exported addresses
 * so the trap hook can recognise exactly this instruction. A frame is built
 * like every other kernel function's (frame pointers are kept).
 */
__asm__(
    "	.text\n"
    "	.p2align 4\n"
    "	.globl rdtrace_shim_nofault_load_byte\n"
    "	.type rdtrace_shim_nofault_load_byte,@function\n"
    "rdtrace_shim_nofault_load_byte:\n"
    "	pushq %rbp\n"
    "	movq %rsp, %rbp\n"
    "	testl %esi, %esi\n"
    "	jz 1f\n"
    "	stac\n"
    "1:\n"
    "	.globl rdtrace_shim_nofault_load_pc\n"
    "	.globl rdtrace_shim_nofault_user_load_pc\n"
    "rdtrace_shim_nofault_load_pc:\n"
    "rdtrace_shim_nofault_user_load_pc:\n"
    "	movzbl (%rdi), %eax\n"
    "2:\n"
    "	testl %esi, %esi\n"
    "	jz 3f\n"
    "	clac\n"
    "3:\n"
    "	popq %rbp\n"
    "	retq\n"
    "	.globl rdtrace_shim_nofault_resume_pc\n"
    "rdtrace_shim_nofault_resume_pc:\n"
    "	movl $0x100, %eax\n"
    "	jmp 2b\n"
    "	.size rdtrace_shim_nofault_load_byte, .-rdtrace_shim_nofault_load_byte\n");

#elif defined(__aarch64__)
/* Kernel addresses: ldrb; user addresses: ldtrb (unprivileged, PAN-safe). */
__asm__(
    "	.text\n"
    "	.p2align 4\n"
    "	.globl rdtrace_shim_nofault_load_byte\n"
    "	.type rdtrace_shim_nofault_load_byte,%function\n"
    "rdtrace_shim_nofault_load_byte:\n"
    "	stp x29, x30, [sp, #-16]!\n"
    "	mov x29, sp\n"
    "	cbnz w1, 1f\n"
    "	.globl rdtrace_shim_nofault_load_pc\n"
    "rdtrace_shim_nofault_load_pc:\n"
    "	ldrb w0, [x0]\n"
    "	b 2f\n"
    "1:\n"
    "	.globl rdtrace_shim_nofault_user_load_pc\n"
    "rdtrace_shim_nofault_user_load_pc:\n"
    "	ldtrb w0, [x0]\n"
    "2:\n"
    "	ldp x29, x30, [sp], #16\n"
    "	ret\n"
    "	.globl rdtrace_shim_nofault_resume_pc\n"
    "rdtrace_shim_nofault_resume_pc:\n"
    "	mov w0, #0x100\n"
    "	b 2b\n"
    "	.size rdtrace_shim_nofault_load_byte, .-rdtrace_shim_nofault_load_byte\n");

int
rdtrace_shim_smap_enabled(void)
{
	return (0);
}

#elif defined(__riscv)
/* User addresses need sstatus.SUM (bit 18) set around the load. */
__asm__(
    "	.text\n"
    "	.p2align 2\n"
    "	.globl rdtrace_shim_nofault_load_byte\n"
    "	.type rdtrace_shim_nofault_load_byte,@function\n"
    "rdtrace_shim_nofault_load_byte:\n"
    "	addi sp, sp, -16\n"
    "	sd ra, 8(sp)\n"
    "	sd s0, 0(sp)\n"
    "	addi s0, sp, 16\n"
    "	lui t0, 0x40\n"
    "	bnez a1, 1f\n"
    "	.globl rdtrace_shim_nofault_load_pc\n"
    "rdtrace_shim_nofault_load_pc:\n"
    "	lbu a0, 0(a0)\n"
    "	j 3f\n"
    "1:\n"
    "	csrs sstatus, t0\n"
    "	.globl rdtrace_shim_nofault_user_load_pc\n"
    "rdtrace_shim_nofault_user_load_pc:\n"
    "	lbu a0, 0(a0)\n"
    "2:\n"
    "	csrc sstatus, t0\n"
    "3:\n"
    "	ld ra, 8(sp)\n"
    "	ld s0, 0(sp)\n"
    "	addi sp, sp, 16\n"
    "	ret\n"
    "	.globl rdtrace_shim_nofault_resume_pc\n"
    "rdtrace_shim_nofault_resume_pc:\n"
    "	li a0, 0x100\n"
    "	lui t0, 0x40\n"
    "	j 2b\n"
    "	.size rdtrace_shim_nofault_load_byte, .-rdtrace_shim_nofault_load_byte\n");

int
rdtrace_shim_smap_enabled(void)
{
	return (0);
}
#endif
