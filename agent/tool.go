package agent

import (
	"fmt"
	"io"
)

// Tool runs the agent binary as a command inside the guest (not as PID 1):
// the suites call it for work that a shell loop does too slowly.
func Tool(args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: kregress-agent <workload> [flags]\n\nworkloads:")
		for _, w := range workloadNames() {
			fmt.Fprintf(stdout, "  %s\n", w)
		}
		return 0
	}
	return runWorkload(args, stdout, stderr)
}
