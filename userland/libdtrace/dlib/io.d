/*
 * open(2) flags of FreeBSD as D inlines (rdtrace D library).
 */

inline int O_RDONLY = 0x0;
inline int O_WRONLY = 0x1;
inline int O_RDWR = 0x2;
inline int O_ACCMODE = 0x3;
inline int O_NONBLOCK = 0x4;
inline int O_APPEND = 0x8;
inline int O_SHLOCK = 0x10;
inline int O_EXLOCK = 0x20;
inline int O_ASYNC = 0x40;
inline int O_FSYNC = 0x80;
inline int O_SYNC = 0x80;
inline int O_NOFOLLOW = 0x100;
inline int O_CREAT = 0x200;
inline int O_TRUNC = 0x400;
inline int O_EXCL = 0x800;
inline int O_NOCTTY = 0x8000;
inline int O_DIRECT = 0x10000;
inline int O_DIRECTORY = 0x20000;
inline int O_EXEC = 0x40000;
inline int O_TTY_INIT = 0x80000;
inline int O_CLOEXEC = 0x100000;
inline int O_DSYNC = 0x1000000;
