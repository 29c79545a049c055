/* Corpus for the fbt decoder tests: shapes of functions a kernel contains.
 * Compiled at test time for x86_64, aarch64 and riscv64 at -O0 and -O2, with
 * and without frame pointers. Nothing here is ever run. */
#include <stdarg.h>

typedef unsigned long u64;

extern u64 external_sink(u64 a, u64 b);
extern void external_void(void);

u64 leaf_add(u64 a, u64 b) { return a + b; }

u64 leaf_loop(const u64 *v, u64 n)
{
	u64 s = 0;
	for (u64 i = 0; i < n; i++)
		s += v[i] * 3;
	return s;
}

u64 nonleaf_call(u64 a, u64 b)
{
	u64 x = external_sink(a, b);
	return x + external_sink(x, a) + 1;
}

u64 tail_call(u64 a, u64 b) { return external_sink(b, a); }

void tail_call_void(void) { external_void(); }

u64 early_return(u64 a, u64 b)
{
	if (a == 0)
		return 7;
	if (b > a)
		return external_sink(a, b) * 2;
	return a - b;
}

u64 big_frame(u64 a)
{
	volatile u64 buf[600];
	for (u64 i = 0; i < 600; i++)
		buf[i] = a ^ i;
	return buf[a % 600] + external_sink(buf[1], buf[2]);
}

u64 small_frame(u64 a)
{
	volatile u64 buf[4];
	buf[0] = a;
	buf[3] = a * 2;
	return buf[0] + buf[3] + external_sink(buf[1], a);
}

u64 switch_table(u64 k, u64 a)
{
	switch (k) {
	case 0: return a + 11;
	case 1: return a * 13;
	case 2: return a ^ 17;
	case 3: return external_sink(a, 19);
	case 4: return a - 23;
	case 5: return a << 3;
	case 6: return a >> 2;
	case 7: return ~a;
	case 8: return a | 0x55;
	default: return 0;
	}
}

u64 many_args(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g, u64 h)
{
	return external_sink(a + b + c + d, e + f + g + h) + h;
}

u64 variadic_sum(int n, ...)
{
	va_list ap;
	u64 s = 0;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		s += va_arg(ap, u64);
	va_end(ap);
	return s;
}

u64 recursive(u64 n)
{
	if (n < 2)
		return n;
	return recursive(n - 1) + recursive(n - 2);
}

static u64 static_helper(u64 a) { return external_sink(a, a + 1) + 5; }

u64 uses_static(u64 a) { return static_helper(a) * static_helper(a + 3); }

u64 callee_saved_pressure(u64 a, u64 b, u64 c)
{
	u64 x = external_sink(a, b);
	u64 y = external_sink(b, c);
	u64 z = external_sink(c, a);
	u64 w = external_sink(x, y);
	return x * y + z * w + a * b * c;
}

void void_leaf(volatile u64 *p) { *p = 1; }
