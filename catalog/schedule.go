package catalog

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxSchedulesPerService and MaxSchedules bound a catalog's schedule rules:
// each is a Temporal Schedule the Manager keeps in step with the catalog.
const (
	MaxSchedulesPerService = 10
	MaxSchedules           = 500
)

// cronExample is the form a rule's cron takes, for messages.
const cronExample = `"0 8 * * 1-5" (08:00 Monday to Friday)`

// CheckCron says what is wrong with a schedule rule's cron expression, ""
// when nothing is. msm takes the five-field form only (minute, hour, day of
// month, month, day of week), parsed by robfig/cron's standard parser:
// Temporal's schedules read it the same way, while their other forms (a
// seconds or a year field, @daily, CRON_TZ=) mean different things to
// different parsers, and the time zone has a field of its own.
func CheckCron(expr string) string {
	s := strings.TrimSpace(expr)
	switch {
	case s == "":
		return "the rule has no cron expression; write one of five fields (minute hour day-of-month month day-of-week), such as " + cronExample
	case strings.HasPrefix(s, "@"):
		return fmt.Sprintf("%q is a shorthand; write the five fields (minute hour day-of-month month day-of-week) instead, such as %s", expr, cronExample)
	case strings.Contains(s, "TZ="):
		return fmt.Sprintf("%q names a time zone; write the zone in the rule's timezone field and five fields here, such as %s", expr, cronExample)
	}
	if n := len(strings.Fields(s)); n != 5 {
		return fmt.Sprintf("%q has %d fields; write five (minute hour day-of-month month day-of-week), such as %s", expr, n, cronExample)
	}
	if _, err := cron.ParseStandard(s); err != nil {
		return fmt.Sprintf("%q is not a cron expression: %v; write five fields (minute hour day-of-month month day-of-week), such as %s", expr, err, cronExample)
	}
	return ""
}

// CheckTimezone says what is wrong with a rule's time zone, "" when
// nothing is: an IANA name the Go time zone database knows ("" is UTC).
// "Local" would mean whatever machine reads it, so it is refused.
func CheckTimezone(tz string) string {
	if tz == "" {
		return ""
	}
	if tz == "Local" {
		return `"Local" is whatever machine reads it; name the zone, such as "Europe/Paris", or leave timezone out for UTC`
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Sprintf("%q is not a time zone; write an IANA name such as \"Europe/Paris\" or \"America/New_York\", or leave timezone out for UTC", tz)
	}
	return ""
}
