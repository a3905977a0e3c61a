// Command kregress-agent is the guest side of kregress: built static
// (CGO_ENABLED=0) and packed as /init into every guest image. See package
// agent for what it does.
package main

import (
	"fmt"
	"os"

	"github.com/kregress/kregress/agent"
)

func main() {
	if os.Getpid() == 1 {
		agent.Init()
		return
	}
	if len(os.Args) > 1 {
		os.Exit(agent.Tool(os.Args[1:], os.Stdout, os.Stderr))
	}
	fmt.Fprintln(os.Stderr, "kregress-agent: runs as /init in a kregress guest; see 'kregress-agent help'")
	os.Exit(2)
}
