/*
 * rdtrace_shim.h - FreeBSD KPI pieces that are macros or static inline
 * functions in FreeBSD, offered as real functions for Rust.
 *
 * Implemented in rdtrace_shim.c, which is compiled with clang for the kernel
 * target and linked into rdtrace.ko. Every function here is defined by the
 * module itself (prefix rdtrace_shim_), so none of them is a kernel import.
 * All of them may be called in probe context unless noted otherwise.
 */
#ifndef RDTRACE_SHIM_H
#define RDTRACE_SHIM_H

#include "rdtrace_kpi.h"

/* The running thread (curthread): the first word of this CPU's struct pcpu. */
struct thread *rdtrace_shim_curthread(void);

/*
 * This CPU's id (curcpu), read at byte offset `cpuid_offset` of struct pcpu.
 * The offset depends on the release; the module verifies it against
 * pcpu_find() for every CPU when it loads.
 */
u_int rdtrace_shim_curcpu(u_int cpuid_offset);

/* Disable interrupts on this CPU, returning the previous state. */
register_t rdtrace_shim_intr_disable(void);
/* Restore the state returned by rdtrace_shim_intr_disable(). */
void rdtrace_shim_intr_restore(register_t state);

/* mtx_init()/mtx_lock()/mtx_unlock()/mtx_destroy() (sleepable default mutex). */
void rdtrace_shim_mtx_init(struct mtx *m, const char *name, int opts);
void rdtrace_shim_mtx_lock(struct mtx *m);
void rdtrace_shim_mtx_unlock(struct mtx *m);
void rdtrace_shim_mtx_lock_spin(struct mtx *m);
void rdtrace_shim_mtx_unlock_spin(struct mtx *m);
void rdtrace_shim_mtx_destroy(struct mtx *m);

/* sx_xlock()/sx_xunlock()/sx_slock()/sx_sunlock(); not for probe context. */
void rdtrace_shim_sx_xlock(struct sx *sx);
void rdtrace_shim_sx_xunlock(struct sx *sx);
void rdtrace_shim_sx_slock(struct sx *sx);
void rdtrace_shim_sx_sunlock(struct sx *sx);

/* critical_enter()/critical_exit(). */
void rdtrace_shim_critical_enter(void);
void rdtrace_shim_critical_exit(void);

/* callout_drain(): stop the callout and wait for a running handler; may sleep. */
int rdtrace_shim_callout_drain(struct callout *c);
/* callout_stop(): cancel without waiting. */
int rdtrace_shim_callout_stop(struct callout *c);

/*
 * Print a NUL-terminated message on the console (printf(9) "%s"). Rust code
 * prints through this rather than calling printf directly, because the
 * compiler may rewrite a printf call with a constant format into a call of
 * puts(), which the kernel does not have.
 */
void rdtrace_shim_console(const char *message);

/*
 * Fault-tolerant byte loads. rdtrace_shim_nofault_load_byte() returns the
 * byte at `addr`, or RDTRACE_NOFAULT_FAILED if the load faulted: the module's
 * dtrace_trap_func hook recognises a fault whose program counter is one of
 * the load labels below and resumes at rdtrace_shim_nofault_resume_pc
 * instead of letting the kernel handle it, so nothing sleeps and nothing
 * panics. `user_access` non-zero reads user memory: amd64 brackets the load
 * with stac/clac (pass it only when the CPU enforces SMAP), arm64 uses an
 * unprivileged load (ldtrb), riscv64 sets sstatus.SUM around the load.
 */
#define RDTRACE_NOFAULT_FAILED 0x100
u_int rdtrace_shim_nofault_load_byte(const volatile void *addr, int user_access);
/* Code labels inside rdtrace_shim_nofault_load_byte (not functions). */
extern const char rdtrace_shim_nofault_load_pc[];
extern const char rdtrace_shim_nofault_user_load_pc[];
extern const char rdtrace_shim_nofault_resume_pc[];
/* amd64: whether the kernel enforces SMAP (cpu_stdext_feature has the SMAP
 * bit); 0 if the kernel does not provide cpu_stdext_feature at all. */
int rdtrace_shim_smap_enabled(void);

/* make_dev_args_init(). */
void rdtrace_shim_make_dev_args_init(struct make_dev_args *args);

#endif /* RDTRACE_SHIM_H */
