//! A userland imitation of FreeBSD amd64 link_elf_obj plus a fake kernel supplying the KPI rdtrace.ko imports.
