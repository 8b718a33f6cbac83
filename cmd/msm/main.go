// Command msm is the MicroService Manager: see `msm help`.
package main

import (
	"os"
	// A schedule rule's timezone is checked against the time zone
	// database: the msm image (FROM scratch) has none of its own.
	_ "time/tzdata"

	"github.com/msm-project/msm/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) }
