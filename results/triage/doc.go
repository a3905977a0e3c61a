// Package triage turns kernel console output into crash reports: it detects
// every class of kernel report (oopses, BUG, WARNING, KASAN/KFENCE/UBSAN,
// lockdep, lockups, stalls, hung tasks, panics, Lustre LBUG/ASSERTION),
// titles them in syzbot's conventions so the same bug gets the same name,
// extracts lockdep reports as structure, and deduplicates reports into bugs.
//
// Parse reads a whole log; Stream takes one line at a time and returns each
// report as soon as it is complete, so a runner can stop the VM at once.
// Package symbolize turns the frames of a report into file:line.
package triage
