/*
 * rdtrace_kpi.h - the FreeBSD kernel programming interface rdtrace.ko uses.
 *
 * Written for rdtrace from FreeBSD's documented KPI (the section 9 manual
 * pages and the published structure layouts); it is not a copy of FreeBSD's
 * headers. It is self-contained (no #include) so bindgen can read it on any
 * host, and it describes only the LP64 ABI of amd64, arm64 and riscv64.
 *
 * Rules for this file:
 *  - Every function and global declared here is a symbol rdtrace.ko may
 *    import from the kernel. sys-headers/kpi-symbols.txt lists exactly these
 *    names; a test keeps the two in step, and the .ko checks reject any
 *    undefined symbol that is not in the list.
 *  - Things that are macros or static inline functions in FreeBSD are not
 *    declared here; rdtrace_shim.h/.c provide them as real functions.
 *  - Structure layouts that differ between the supported releases (14.x and
 *    15.x) are noted where they occur; sys-headers/layout-check.sh compares
 *    the ones we depend on with a real /usr/src/sys when one is available.
 */
#ifndef RDTRACE_KPI_H
#define RDTRACE_KPI_H

/* ---- basic types (LP64) ------------------------------------------------ */

typedef __SIZE_TYPE__ size_t;
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long int64_t;
typedef unsigned long uint64_t;
typedef long intptr_t;
typedef unsigned long uintptr_t;
typedef long intmax_t;
typedef unsigned int u_int;
typedef unsigned long u_long;
typedef unsigned char u_char;
typedef char *caddr_t;
typedef uint32_t uid_t;
typedef uint32_t gid_t;
typedef int32_t pid_t;
typedef int32_t lwpid_t;
typedef int64_t time_t;
typedef int64_t sbintime_t;
typedef long register_t;

/* Kernel objects rdtrace only ever handles by pointer. */
struct thread;
struct proc;
struct ucred;
struct cdev;
struct uio;
struct module;
struct linker_file;
struct malloc_type;
struct trapframe;
struct witness;
struct pcpu;
struct sysctl_oid;
struct eventhandler_list;
struct eventhandler_entry;

/* ---- module metadata and linker sets (module(9), DECLARE_MODULE(9)) ----- */

/* Version of struct mod_metadata understood by the kernel linker. */
#define MDT_STRUCT_VERSION 1

/* Kinds of module metadata records (mod_metadata.md_type). */
#define MDT_DEPEND 1   /* md_data -> struct mod_depend */
#define MDT_MODULE 2   /* md_data -> moduledata_t */
#define MDT_VERSION 3  /* md_data -> struct mod_version */
#define MDT_PNP_INFO 4 /* md_data -> PNP table (unused by rdtrace) */

/* One record in the "modmetadata_set" linker set (24 bytes). */
struct mod_metadata {
	int md_version;     /* MDT_STRUCT_VERSION */
	int md_type;        /* MDT_* */
	const void *md_data;
	const char *md_cval; /* module or interface name */
};

/* Accepted version range of a module dependency (12 bytes). */
struct mod_depend {
	int md_ver_minimum;
	int md_ver_preferred;
	int md_ver_maximum;
};

/* Interface version a module provides (4 bytes). */
struct mod_version {
	int mv_version;
};

/* Events delivered to a module's event handler. */
typedef enum modeventtype {
	MOD_LOAD = 0,
	MOD_UNLOAD = 1,
	MOD_SHUTDOWN = 2,
	MOD_QUIESCE = 3
} modeventtype_t;

typedef struct module *module_t;
typedef int (*modeventhand_t)(module_t mod, int what, void *arg);

/* What DECLARE_MODULE registers: name, event handler, handler argument. */
typedef struct moduledata {
	const char *name;
	modeventhand_t evhand;
	void *priv;
} moduledata_t;

/*
 * A "sysinit_set"/"sysuninit_set" record. FreeBSD 14 and later have the
 * list link at offset 8 (32 bytes in all); older releases lack it and are
 * not supported.
 */
typedef void (*sysinit_cfunc_t)(const void *arg);
struct sysinit {
	uint32_t subsystem;
	uint32_t order;
	struct sysinit *next; /* kernel-private list link, zero in the module */
	sysinit_cfunc_t func;
	const void *udata;
};

/* Subsystem and order codes rdtrace uses (enum sysinit_sub_id/elem_order). */
#define SI_SUB_KMEM 0x1800000
#define SI_SUB_KDTRACE 0x2140000
#define SI_SUB_OPENSOLARIS 0x2490000
#define SI_SUB_DTRACE 0x3020000
#define SI_SUB_DTRACE_PROVIDER 0x3048000
#define SI_SUB_DTRACE_ANON 0x308C000
#define SI_SUB_DRIVERS 0x3100000
#define SI_ORDER_FIRST 0x0000000
#define SI_ORDER_SECOND 0x0000001
#define SI_ORDER_MIDDLE 0x1000000
#define SI_ORDER_ANY 0xfffffff

/* The sysinit function DECLARE_MODULE points at; its argument is the moduledata_t. */
void module_register_init(const void *moduledata);

/* ---- character devices (make_dev(9), devfs_set_cdevpriv(9)) ------------- */

/* cdevsw.d_version of the current device interface. */
#define D_VERSION 0x5c48c353

/* cdevsw.d_flags bits rdtrace may use. */
#define D_TRACKCLOSE 0x00080000
#define D_NEEDGIANT 0x00400000

typedef int d_open_t(struct cdev *dev, int oflags, int devtype, struct thread *td);
typedef int d_close_t(struct cdev *dev, int fflag, int devtype, struct thread *td);
typedef int d_rdwr_t(struct cdev *dev, struct uio *uio, int ioflag);
typedef int d_ioctl_t(struct cdev *dev, u_long cmd, caddr_t data, int fflag,
    struct thread *td);
/* Entry points rdtrace never sets; kept as untyped slots. */
typedef void d_unused_t(void);

/* The character device switch (184 bytes). */
struct cdevsw {
	int d_version;
	u_int d_flags;
	const char *d_name;
	d_open_t *d_open;
	d_unused_t *d_fdopen;
	d_close_t *d_close;
	d_rdwr_t *d_read;
	d_rdwr_t *d_write;
	d_ioctl_t *d_ioctl;
	d_unused_t *d_poll;
	d_unused_t *d_mmap;
	d_unused_t *d_strategy;
	void *d_spare0;
	d_unused_t *d_kqfilter;
	d_unused_t *d_purge;
	d_unused_t *d_mmap_single;
	int32_t d_spare1[3];
	void *d_spare2[3];
	/* Owned by the kernel: must start out zero. */
	void *d_devs_first;
	int d_spare3;
	void *d_giant_or_postfree;
};

/* make_dev_args.mda_flags */
#define MAKEDEV_REF 0x01
#define MAKEDEV_WHTOUT 0x02
#define MAKEDEV_NOWAIT 0x04
#define MAKEDEV_WAITOK 0x08
#define MAKEDEV_ETERNAL 0x10
#define MAKEDEV_CHECKNAME 0x20

#define UID_ROOT 0
#define GID_WHEEL 0

/* Arguments of make_dev_s(); initialise with make_dev_args_init_impl(). */
struct make_dev_args {
	size_t mda_size;
	int mda_flags;
	struct cdevsw *mda_devsw;
	struct ucred *mda_cr;
	uid_t mda_uid;
	gid_t mda_gid;
	int mda_mode;
	int mda_unit;
	void *mda_si_drv1;
	void *mda_si_drv2;
};

void make_dev_args_init_impl(struct make_dev_args *args, size_t size);
int make_dev_s(struct make_dev_args *args, struct cdev **cdev, const char *fmt, ...);
void destroy_dev(struct cdev *dev);

typedef void d_priv_dtor_t(void *data);
int devfs_set_cdevpriv(void *priv, d_priv_dtor_t *dtor);
int devfs_get_cdevpriv(void **datap);
void devfs_clear_cdevpriv(void);

/* ---- kernel memory (malloc(9)) ------------------------------------------ */

#define M_NOWAIT 0x0001
#define M_WAITOK 0x0002
#define M_ZERO 0x0100

/* The kernel's general-purpose malloc type for drivers. */
extern struct malloc_type M_DEVBUF;

void *malloc(size_t size, struct malloc_type *type, int flags);
void *malloc_aligned(size_t size, size_t align, struct malloc_type *type, int flags);
void free(void *addr, struct malloc_type *type);

void *memcpy(void *dst, const void *src, size_t len);
void *memmove(void *dst, const void *src, size_t len);
void *memset(void *dst, int c, size_t len);
int memcmp(const void *a, const void *b, size_t len);
int bcmp(const void *a, const void *b, size_t len);
size_t strlen(const char *s);

/* ---- locks (mutex(9), sx(9), rmlock(9), critical_enter(9)) -------------- */

struct lock_object {
	const char *lo_name;
	u_int lo_flags;
	u_int lo_data;
	struct witness *lo_witness;
};

struct mtx {
	struct lock_object lock_object;
	volatile uintptr_t mtx_lock;
};

struct sx {
	struct lock_object lock_object;
	volatile uintptr_t sx_lock;
};

/*
 * struct rmlock embeds a cpuset whose size depends on the kernel's MAXCPU, so
 * rdtrace never lays one out itself: it reserves this much suitably aligned
 * storage (the layout check verifies the real structure fits).
 */
#define RDTRACE_RMLOCK_STORAGE 512
#define RDTRACE_RM_PRIOTRACKER_STORAGE 64
struct rmlock;
struct rm_priotracker;

/* mtx_init() options */
#define MTX_DEF 0x00000000
#define MTX_SPIN 0x00000001
#define MTX_RECURSE 0x00000004
#define MTX_NOWITNESS 0x00000008
/* sx_init_flags() options */
#define SX_NOWITNESS 0x00000008
#define SX_RECURSE 0x00000020

void _mtx_init(volatile uintptr_t *c, const char *name, const char *type, int opts);
void _mtx_destroy(volatile uintptr_t *c);
void __mtx_lock_flags(volatile uintptr_t *c, int opts, const char *file, int line);
void __mtx_unlock_flags(volatile uintptr_t *c, int opts, const char *file, int line);
void __mtx_lock_spin_flags(volatile uintptr_t *c, int opts, const char *file, int line);
void __mtx_unlock_spin_flags(volatile uintptr_t *c, int opts, const char *file, int line);

void sx_init_flags(struct sx *sx, const char *description, int opts);
void sx_destroy(struct sx *sx);
int _sx_xlock(struct sx *sx, int opts, const char *file, int line);
void _sx_xunlock(struct sx *sx, const char *file, int line);
int _sx_slock(struct sx *sx, int opts, const char *file, int line);
void _sx_sunlock(struct sx *sx, const char *file, int line);

void rm_init_flags(struct rmlock *rm, const char *name, int opts);
void rm_destroy(struct rmlock *rm);
void _rm_rlock(struct rmlock *rm, struct rm_priotracker *tracker, int trylock);
void _rm_runlock(struct rmlock *rm, struct rm_priotracker *tracker);
void _rm_wlock(struct rmlock *rm);
void _rm_wunlock(struct rmlock *rm);

void critical_enter_KBI(void);
void critical_exit_KBI(void);

/* ---- timers (callout(9)) ------------------------------------------------- */

/* A callout (64 bytes); owned by the callout subsystem once initialised. */
struct callout {
	void *c_links[2];
	sbintime_t c_time;
	sbintime_t c_precision;
	void *c_arg;
	void (*c_func)(void *);
	struct lock_object *c_lock;
	short c_flags;
	short c_iflags;
	volatile int c_cpu;
};

/* callout_reset_sbt_on() flags */
#define C_DIRECT_EXEC 0x0001
#define C_HARDCLOCK 0x0100
#define C_ABSOLUTE 0x0200
/* _callout_stop_safe() flags */
#define CS_DRAIN 0x0001

/* sbintime_t: 32.32 fixed-point seconds */
#define SBT_1S ((sbintime_t)1 << 32)

void callout_init(struct callout *c, int mpsafe);
int callout_reset_sbt_on(struct callout *c, sbintime_t sbt, sbintime_t precision,
    void (*func)(void *), void *arg, int cpu, int flags);
int _callout_stop_safe(struct callout *c, int flags);

/* ---- time (binuptime(9), nanotime(9)) ------------------------------------ */

struct bintime {
	time_t sec;
	uint64_t frac; /* 2^-64 seconds */
};

struct timespec {
	time_t tv_sec;
	long tv_nsec;
};

void binuptime(struct bintime *bt);
void nanotime(struct timespec *ts);
void nanouptime(struct timespec *ts);
extern volatile int ticks;
extern int hz;

/* ---- CPUs (smp_rendezvous(9), pcpu) --------------------------------------- */

extern u_int mp_maxid;  /* highest CPU id in use */
extern int mp_ncpus;    /* number of CPUs */
extern struct pcpu *cpuid_to_pcpu[];

struct pcpu *pcpu_find(u_int cpuid);

typedef void smp_rendezvous_fn(void *arg);
void smp_rendezvous(smp_rendezvous_fn *setup, smp_rendezvous_fn *action,
    smp_rendezvous_fn *teardown, void *arg);
/* Pass as setup/teardown when no barrier is wanted. */
void smp_no_rendezvous_barrier(void *arg);

/* ---- kernel virtual memory (pmap(9)) ---------------------------------------- */

typedef uint64_t vm_offset_t;
typedef uint64_t vm_paddr_t;

/* Physical address behind kernel virtual address `va`, 0 if it is unmapped.
 * Walks the kernel page tables without locks or faults. */
vm_paddr_t pmap_kextract(vm_offset_t va);

/* amd64 only: CPUID leaf 7 EBX feature bits (SMAP is bit 20). Never
 * reference it from code built for another architecture. */
extern u_int cpu_stdext_feature;
#define CPUID_STDEXT_SMAP 0x00100000

/* ---- user memory (copy(9), fetch(9)) ---------------------------------------- */

int copyin(const void *uaddr, void *kaddr, size_t len);
int copyout(const void *kaddr, void *uaddr, size_t len);
int copyinstr(const void *uaddr, void *kaddr, size_t len, size_t *done);
/* Fault-tolerant single loads from user space: -1 (fubyte/fuword16) or a
 * non-zero return (fueword*) on fault, never a trap. */
int fubyte(volatile const void *base);
int fuword16(volatile const void *base);
int fueword(volatile const void *base, long *val);
int fueword32(volatile const void *base, int32_t *val);
int fueword64(volatile const void *base, int64_t *val);

/* ---- linker files (kld(4), linker internals used by DTrace providers) ----- */

typedef struct linker_file *linker_file_t;

typedef struct linker_symval {
	const char *name;
	caddr_t value;
	size_t size;
} linker_symval_t;

typedef int linker_predicate_t(linker_file_t lf, void *arg);
typedef int linker_function_nameval_callback_t(linker_file_t lf, int index,
    linker_symval_t *symval, void *arg);

int linker_file_foreach(linker_predicate_t *predicate, void *arg);
int linker_file_lookup_set(linker_file_t lf, const char *name, void *start,
    void *stop, int *count);
int linker_file_function_listall(linker_file_t lf,
    linker_function_nameval_callback_t *callback, void *arg);
caddr_t linker_file_lookup_symbol(linker_file_t lf, const char *name, int deps);
int linker_search_symbol_name(caddr_t value, char *buf, u_int buflen, long *offset);
int linker_ddb_search_symbol_name(caddr_t value, char *buf, u_int buflen, long *offset);

/* A symbol handle of the kernel linker (an opaque pointer into a file's
 * symbol table). linker_ddb_lookup finds a defined symbol by name in any
 * loaded file (0, or ENOENT); linker_ddb_symbol_values fills in its name,
 * value and size (0 on success). The syscall provider uses them to learn how
 * many entries sysent[] and syscallnames[] have (symbol size / entry size). */
typedef const char *c_linker_sym_t;
int linker_ddb_lookup(const char *symstr, c_linker_sym_t *sym);
int linker_ddb_symbol_values(c_linker_sym_t sym, linker_symval_t *symval);

/* ---- the native system call table (sys/sysent.h, kern/syscalls.c) --------- */

/* struct sysent, 32 bytes on LP64 (FreeBSD 12 and later). The systrace hook
 * protocol uses sy_entry/sy_return: a non-zero DTrace probe id makes the
 * syscall path call systrace_probe_func. */
struct sysent {
	void *sy_call;			/* the implementation */
	void *sy_systrace_args_func;	/* args -> uint64_t[8] converter */
	uint8_t sy_narg;		/* number of register arguments */
	uint8_t sy_flags;
	uint16_t sy_auevent;		/* audit event */
	uint32_t sy_entry;		/* DTrace entry probe id, 0 = none */
	uint32_t sy_return;		/* DTrace return probe id, 0 = none */
	uint32_t sy_thrcnt;
};

/* The native ABI's table and the matching names (an array of SYS_MAXSYSCALL
 * entries each; a name may be NULL for an unused slot). */
extern struct sysent sysent[];
extern const char *syscallnames[];
/* Set while any syscall probe is enabled; gates the systrace_probe_func call. */
extern _Bool systrace_enabled;

/* ---- sysctl(9) ---------------------------------------------------------- */

/* A dynamic sysctl context: a list head of two pointers. */
struct sysctl_ctx_list {
	void *tqh_first;
	void **tqh_last;
};

/* A list of child OIDs (SLIST head). */
struct sysctl_oid_list {
	struct sysctl_oid *slh_first;
};

#define CTLTYPE_NODE 1
#define CTLTYPE_INT 2
#define CTLTYPE_STRING 3
#define CTLFLAG_RD 0x80000000
#define CTLFLAG_WR 0x40000000
#define CTLFLAG_RW (CTLFLAG_RD | CTLFLAG_WR)
#define CTLFLAG_MPSAFE 0x00040000
#define OID_AUTO (-1)

struct sysctl_req;
typedef int sysctl_handler_t(struct sysctl_oid *oidp, void *arg1, intmax_t arg2,
    struct sysctl_req *req);

extern struct sysctl_oid_list sysctl__kern_children;
extern struct sysctl_oid_list sysctl__debug_children;

int sysctl_ctx_init(struct sysctl_ctx_list *clist);
int sysctl_ctx_free(struct sysctl_ctx_list *clist);
struct sysctl_oid *sysctl_add_oid(struct sysctl_ctx_list *clist,
    struct sysctl_oid_list *parent, int nbr, const char *name, int kind,
    void *arg1, intmax_t arg2, sysctl_handler_t *handler, const char *fmt,
    const char *descr, const char *label);
int sysctl_handle_int(struct sysctl_oid *oidp, void *arg1, intmax_t arg2,
    struct sysctl_req *req);
int sysctl_handle_string(struct sysctl_oid *oidp, void *arg1, intmax_t arg2,
    struct sysctl_req *req);

/* ---- EVENTHANDLER(9) ------------------------------------------------------ */

typedef struct eventhandler_entry *eventhandler_tag;
#define EVENTHANDLER_PRI_ANY 10000

/* Handler shapes of the two events DTrace listens to. */
typedef void kld_load_handler_t(void *arg, linker_file_t lf);
typedef void kld_unload_try_handler_t(void *arg, linker_file_t lf, int *error);

eventhandler_tag eventhandler_register(struct eventhandler_list *list,
    const char *name, void *func, void *arg, int priority);
void eventhandler_deregister(struct eventhandler_list *list, eventhandler_tag tag);
/* The list of an event by name (NULL if no handler was ever registered);
 * EVENTHANDLER_DEREGISTER looks the list up this way. */
struct eventhandler_list *eventhandler_find_list(const char *name);

/* ---- console and panic (printf(9), panic(9)) ---------------------------------- */

int printf(const char *fmt, ...);
/* Non-null once the kernel has panicked (the panic message). */
extern const char *panicstr;
void panic(const char *fmt, ...) __attribute__((__noreturn__));

/* ---- writing kernel text on arm64 (machine/cpufunc.h) ---------------------- */

/* arm64 only. A writable address for kernel memory that may be mapped
 * read-only (a writable alias of the page for kernel text): true and *out
 * set, or false. */
_Bool arm64_get_writable_addr(void *addr, void **out);
/* arm64 only. Make instruction fetches see stores to [addr, addr + len)
 * (data cache clean to the point of unification, instruction cache
 * invalidate, inner-shareable broadcast). */
void arm64_icache_sync_range(void *addr, size_t len);

/* ---- KDTRACE_HOOKS variables the kernel provides for DTrace ------------------ */

typedef int dtrace_trap_func_t(struct trapframe *frame, u_int type);
typedef int dtrace_invop_handler_t(struct trapframe *frame);
typedef void dtrace_doubletrap_func_t(void);
typedef void dtrace_vtime_switch_func_t(struct thread *td);
typedef void systrace_probe_func_t(void *syscall_args, int kind, int retval);
/* SDT sites pass six values: sdt_probe() gives 0 for a5, sdt_probe6() the
 * probe's sixth argument. */
typedef void sdt_probe_func_t(uint32_t id, uintptr_t a0, uintptr_t a1,
    uintptr_t a2, uintptr_t a3, uintptr_t a4, uintptr_t a5);
typedef void dtrace_malloc_probe_func_t(uint32_t id, uintptr_t a0, uintptr_t a1,
    uintptr_t a2, uintptr_t a3, uintptr_t a4);

/* Called first for kernel traps; non-zero means "handled". */
extern dtrace_trap_func_t *dtrace_trap_func;
/* Where the kernel breakpoint trap diverts (amd64: a code address; arm64 and
 * riscv64: a handler taking the trap frame). */
extern void *dtrace_invop_jump_addr;
/* amd64 only: the trap stub stores the address of its normal breakpoint path
 * here before jumping to dtrace_invop_jump_addr; a handler that does not
 * claim the breakpoint continues there with the trap frame in place. */
extern void *dtrace_invop_calltrap_addr;
extern dtrace_doubletrap_func_t *dtrace_doubletrap_func;
extern volatile int dtrace_vtime_active;
extern dtrace_vtime_switch_func_t *dtrace_vtime_switch_func;
extern systrace_probe_func_t *systrace_probe_func;
extern sdt_probe_func_t *sdt_probe_func;
/* Non-zero while any SDT probe is enabled; gates the probe sites. */
extern volatile _Bool sdt_probes_enabled;
extern dtrace_malloc_probe_func_t *dtrace_malloc_probe;

#endif /* RDTRACE_KPI_H */
