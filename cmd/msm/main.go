// Command msm is the MicroService Manager: see `msm help`.
package main

import (
	"os"

	"github.com/msm-project/msm/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) }
