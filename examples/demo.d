#!/usr/sbin/dtrace -s
/*
 * rdtrace demo: sample every CPU at 997 Hz for two seconds, count the
 * samples per CPU, and draw the measured time between consecutive samples
 * on the same CPU as a power-of-two histogram (in microseconds).
 */

#pragma D option quiet

dtrace:::BEGIN
{
	printf("Sampling every CPU at 997 Hz for 2 seconds...\n");
}

profile-997hz
/last[cpu] != 0/
{
	@interval["microseconds between samples"] = quantize((timestamp - last[cpu]) / 1000);
}

profile-997hz
{
	last[cpu] = timestamp;
	@samples[cpu] = count();
}

tick-1s
/++seconds == 2/
{
	exit(0);
}

dtrace:::END
{
	printf("%-8s %8s\n", "CPU", "SAMPLES");
	printa("%-8d %@8d\n", @samples);
}
