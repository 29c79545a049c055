/*
 * Basic definitions every D program sees (rdtrace D library).
 */

inline void *NULL = 0;
