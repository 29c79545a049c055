#!/usr/sbin/dtrace -s
/*
 * rdtrace demo: sample every CPU at 997 Hz for two seconds, count the
 * samples per CPU, and draw how late each timer fired (profile's arg2,
 * in nanoseconds) as a power-of-two histogram.
 */

#pragma D option quiet

dtrace:::BEGIN
{
	printf("Sampling at 997 Hz on every CPU for 2 seconds...\n");
}

profile-997hz
{
	@samples[cpu] = count();
	@lateness["timer lateness (ns)"] = quantize(arg2);
}

tick-1s
/++secs == 2/
{
	exit(0);
}

dtrace:::END
{
	printf("%-8s %8s\n", "CPU", "SAMPLES");
	printa("%-8d %@8d\n", @samples);
}
