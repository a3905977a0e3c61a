package triage

import (
	"bytes"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkCorpus parses the whole syzkaller corpus per iteration and
// reports files/s and MB/s.
func BenchmarkCorpus(b *testing.B) {
	cases := corpusCases(b)
	total := 0
	for _, c := range cases {
		total += len(c.log)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		for _, c := range cases {
			Parse(c.log)
		}
	}
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(float64(len(cases)*b.N)/b.Elapsed().Seconds(), "files/s")
	// The machine is shared: CPU time is the fairer measure of cost.
	if cpu > 0 {
		b.ReportMetric(float64(len(cases)*b.N)/cpu, "files/cpu-s")
		b.ReportMetric(float64(total*b.N)/cpu/1e6, "MB/cpu-s")
	}
}

// BenchmarkStreamHugeLog streams 1 GiB of console output (a corpus log
// with a report, repeated) and reports the heap in use at the end, which
// must not grow with the input.
func BenchmarkStreamHugeLog(b *testing.B) {
	cases := corpusCases(b)
	var chunk []byte
	for _, c := range cases {
		if bytes.Contains(c.log, []byte("possible circular locking")) {
			chunk = c.log
			break
		}
	}
	lines := strings.Split(string(chunk), "\n")
	const target = 1 << 30
	b.SetBytes(target)
	for i := 0; i < b.N; i++ {
		s := NewStream()
		n, reports := 0, 0
		for n < target {
			for _, ln := range lines {
				reports += len(s.Feed(ln))
				n += len(ln) + 1
			}
		}
		reports += len(s.Flush())
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(reports), "reports")
	}
}
