package ctl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// formatTime is t in local time, RFC 3339; "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

// formatTimeMillis is t in local time with milliseconds: the steps of one
// message are often within the same second.
func formatTimeMillis(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}

// ageOf is how long ago t was, for people: "45s", "4m12s", "3h07m",
// "2d05h"; "-" when t is nil. Truncated, never rounded up; a time in the
// future (clocks of two machines) is "0s".
func ageOf(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := max(now.Sub(*t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// formatSize is n bytes for people: 512 B, 4.0 KiB, 1.5 MiB.
func formatSize(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 && v > -1024 || unit == "TiB" {
			return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
		}
	}
	return "" // not reached
}

// formatQuota is a quota for people; 0 means none set.
func formatQuota(n int64) string {
	if n <= 0 {
		return "-"
	}
	return formatSize(n)
}

// parseSize parses "1048576", "500MiB", "500M", "2G", "64k" (binary
// units, K = 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M, G, T)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	unit := strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit (K, M, G, T)", s)
	}
	if n > (1<<63-1)>>sh {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << sh, nil
}

// formatMillis shows seconds as milliseconds.
func formatMillis(sec float64) string {
	return strconv.FormatFloat(sec*1000, 'f', 1, 64) + " ms"
}

// formatSender shows the null reverse-path as <>.
func formatSender(s string) string {
	if s == "" {
		return "<>"
	}
	return cell(s)
}

// cell makes a server-supplied string safe for a table cell: control
// characters (a terminal escape in a Subject, a tab that would break the
// columns) become '?', and "" becomes "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// clip is cell cut to at most n runes, with "…" when cut.
func clip(s string, n int) string {
	s = cell(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// plural chooses the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
