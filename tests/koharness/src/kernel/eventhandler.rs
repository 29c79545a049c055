//! EVENTHANDLER(9): `eventhandler_register`/`eventhandler_deregister`/
//! `eventhandler_find_list` and
//! the invocations the kernel linker makes (`kld_load`, `kld_unload_try`,
//! `kld_unload`).
//!
//! Handlers are kept per event name (the `list` argument may be NULL, as
//! with `EVENTHANDLER_REGISTER`), called in priority order (lower first,
//! registration order among equals). Deregistering an unknown tag panics.
//! Not probe context.

use std::sync::Mutex;

use super::kpanic;

#[derive(Clone, Debug)]
struct Handler {
    tag: u64,
    name: String,
    func: u64,
    arg: u64,
    priority: i32,
}

static HANDLERS: Mutex<Vec<Handler>> = Mutex::new(Vec::new());
static NEXT_TAG: Mutex<u64> = Mutex::new(0);

extern "C" fn kpi_eventhandler_register(
    _list: u64,
    name: u64,
    func: u64,
    arg: u64,
    priority: i32,
) -> u64 {
    // SAFETY: event names are C strings.
    let name = unsafe { super::c_str(name, 64) };
    if func == 0 {
        kpanic(&format!("eventhandler_register({name}): NULL handler"));
    }
    let tag = {
        let mut n = NEXT_TAG.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        // Tags are opaque pointers to module code; make them distinct and non-null.
        0xe000_0000_0000 + *n * 16
    };
    list_handle(&name);
    let mut h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    h.push(Handler {
        tag,
        name,
        func,
        arg,
        priority,
    });
    tag
}

/// Event lists handed out by `eventhandler_find_list`: (name, handle).
/// A list exists from the first registration for its name on, as in
/// FreeBSD (lists are never freed).
static LISTS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

fn list_handle(name: &str) -> u64 {
    let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, h)) = lists.iter().find(|(n, _)| n == name) {
        return *h;
    }
    let h = Box::leak(Box::new([0u64; 4])).as_ptr() as u64;
    lists.push((name.to_string(), h));
    h
}

/// `eventhandler_find_list(name)`: the event's list, NULL if nothing was
/// ever registered for it.
extern "C" fn kpi_eventhandler_find_list(name: u64) -> u64 {
    // SAFETY: event names are C strings.
    let name = unsafe { super::c_str(name, 64) };
    LISTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, h)| *h)
}

/// `eventhandler_deregister(list, tag)`: `list` is the event's list (from
/// `eventhandler_find_list`) or NULL (the harness also accepts that); a
/// list of another event, or an unknown tag, is a kernel panic.
extern "C" fn kpi_eventhandler_deregister(list: u64, tag: u64) {
    let mut h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    match h.iter().position(|x| x.tag == tag) {
        Some(i) => {
            if list != 0 && list != list_handle(&h[i].name) {
                kpanic(&format!(
                    "eventhandler_deregister: tag {tag:#x} is not on list {list:#x}"
                ));
            }
            h.remove(i);
        }
        None => kpanic(&format!("eventhandler_deregister: unknown tag {tag:#x}")),
    }
}

fn handlers_for(name: &str) -> Vec<Handler> {
    let h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<Handler> = h.iter().filter(|x| x.name == name).cloned().collect();
    v.sort_by_key(|x| x.priority);
    v
}

/// Run an event handler the way the kernel does: in a kernel thread (the
/// calling thread occupies its home CPU, or keeps the CPU it is on).
fn in_kernel(f: impl FnOnce()) {
    super::cpu::enter_kernel(super::cpu::home_cpu());
    f();
    super::cpu::leave_kernel();
}

/// `EVENTHANDLER_INVOKE(kld_load, lf)`.
pub fn invoke_kld_load(lf: u64) {
    for h in handlers_for("kld_load") {
        // SAFETY: kld_load handlers are `void (*)(void *, linker_file_t)`.
        let f: extern "C" fn(u64, u64) = unsafe { std::mem::transmute(h.func) };
        in_kernel(|| f(h.arg, lf));
    }
}

/// `EVENTHANDLER_INVOKE(kld_unload_try, lf, &error)`: the error handlers set.
pub fn invoke_kld_unload_try(lf: u64) -> i32 {
    let mut error: i32 = 0;
    for h in handlers_for("kld_unload_try") {
        // SAFETY: kld_unload_try handlers are `void (*)(void *, linker_file_t, int *)`.
        let f: extern "C" fn(u64, u64, *mut i32) = unsafe { std::mem::transmute(h.func) };
        in_kernel(|| f(h.arg, lf, &mut error));
    }
    error
}

/// `EVENTHANDLER_INVOKE(kld_unload, filename, address, size)`.
pub fn invoke_kld_unload(filename: u64, address: u64, size: u64) {
    for h in handlers_for("kld_unload") {
        // SAFETY: kld_unload handlers are `void (*)(void *, const char *, caddr_t, size_t)`.
        let f: extern "C" fn(u64, u64, u64, u64) = unsafe { std::mem::transmute(h.func) };
        in_kernel(|| f(h.arg, filename, address, size));
    }
}

/// Registered handlers whose function or argument lies in `[lo, hi)`.
pub fn registered_in(lo: u64, hi: u64) -> Vec<String> {
    let h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    h.iter()
        .filter(|x| (x.func >= lo && x.func < hi) || (x.arg >= lo && x.arg < hi))
        .map(|x| format!("eventhandler {} func {:#x}", x.name, x.func))
        .collect()
}

/// Number of registered handlers for `name`.
pub fn count(name: &str) -> usize {
    handlers_for(name).len()
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        (
            "eventhandler_register",
            kpi_eventhandler_register as *const () as usize,
        ),
        (
            "eventhandler_deregister",
            kpi_eventhandler_deregister as *const () as usize,
        ),
        (
            "eventhandler_find_list",
            kpi_eventhandler_find_list as *const () as usize,
        ),
    ]
}
