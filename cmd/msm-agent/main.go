// Command msm-agent is the container agent alone (`msm agent` without the
// rest of msm), which nodes start for each container when it is installed
// beside msm: it holds a fraction of msm's memory.
package main

import (
	"os"

	"github.com/msm-project/msm/internal/agentcmd"
)

func main() { os.Exit(agentcmd.Main(os.Args[1:], os.Stderr, os.Getenv)) }
