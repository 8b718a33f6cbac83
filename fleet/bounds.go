package fleet

import (
	"fmt"
	"unicode/utf8"

	"github.com/msm-project/msm/catalog"
)

// Bounds of what the Manager carries. Its state travels through
// continue-as-new, whose input Temporal caps at 2 MB, and every byte of it
// is written to history again with each new run: texts that come from
// outside (a MicroService's output in an error report, a provider's error)
// are cut to MaxText, and the fleet is bounded by MaxContainers.
const (
	// MaxText is the most bytes of one error text or event the Manager
	// keeps; the whole text stays in the log of the process that made it.
	MaxText = 512
	// MaxContainers is the most containers one Manager holds: ~45 bytes
	// each in its state (ContainerList), so 15,000 stay well under 1 MB.
	// A larger fleet is several Managers (cells), each a catalog of its own.
	MaxContainers = catalog.MaxContainers
)

// Clip cuts s to at most MaxText bytes, on a rune boundary, saying how
// much was left out.
func Clip(s string) string {
	if len(s) <= MaxText {
		return s
	}
	tail := fmt.Sprintf(" … (%d more bytes in the log)", len(s))
	cut := MaxText - len(tail)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" … (%d more bytes in the log)", len(s)-cut)
}
