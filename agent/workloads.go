package agent

import (
	"fmt"
	"io"
	"sort"
)

// workloads maps a workload name to its implementation.
var workloads = map[string]func(args []string, stdout, stderr io.Writer) int{}

func workloadNames() []string {
	var n []string
	for k := range workloads {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func runWorkload(args []string, stdout, stderr io.Writer) int {
	w, ok := workloads[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kregress-agent: unknown workload %q (have %v)\n", args[0], workloadNames())
		return 2
	}
	return w(args[1:], stdout, stderr)
}
