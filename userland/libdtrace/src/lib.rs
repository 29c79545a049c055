//! libdtrace for rdtrace: compile D, build DOF, consume, print.
