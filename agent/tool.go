package agent

import (
	"fmt"
	"io"
)

// Tool runs the agent binary as a command inside the guest (not as PID 1):
// the suites call its workloads, which a shell loop would run too slowly.
func Tool(args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: kregress-agent <workload> [-threads N] [-duration D] [-dir DIR] [flags]\n\nworkloads:")
		for _, w := range workloadNames() {
			fmt.Fprintf(stdout, "  %s\n", w)
		}
		return 0
	}
	return runWorkload(args, stdout, stderr)
}
