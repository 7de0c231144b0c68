package pop3

import (
	"errors"
	"slices"
	"testing"
)

func TestParseCommandSplitsKeywordAndArguments(t *testing.T) {
	for _, tc := range []struct {
		line, name, rest string
		args             []string
	}{
		{"STAT\r\n", "STAT", "", nil},
		{"stat\r\n", "STAT", "", nil},
		{"LIST 1\r\n", "LIST", "1", []string{"1"}},
		{"TOP 1 10\n", "TOP", "1 10", []string{"1", "10"}},
		{"Top  1   10", "TOP", " 1   10", []string{"1", "10"}},
		{"PASS my secret  pass\r\n", "PASS", "my secret  pass", []string{"my", "secret", "pass"}},
		{"USER jörg@example.test\r\n", "USER", "jörg@example.test", []string{"jörg@example.test"}},
	} {
		cmd, err := parseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if cmd.Name != tc.name || cmd.Rest != tc.rest || !slices.Equal(cmd.Args, tc.args) {
			t.Errorf("%q: got %q %q %q, want %q %q %q", tc.line, cmd.Name, cmd.Args, cmd.Rest, tc.name, tc.args, tc.rest)
		}
	}
}

func TestParseCommandRefusesWhatIsNotACommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want error
	}{
		{"\r\n", errEmptyLine},
		{"", errEmptyLine},
		{"ST\r\n", errBadKeyword},
		{"STATS\r\n", errBadKeyword},
		{"ST4T\r\n", errBadKeyword},
		{" STAT\r\n", errBadKeyword},
		{"LIST\x001\r\n", errBadChar},
		{"USER a\tb\r\n", errBadChar},
		{"PASS a\rb\r\n", errBadChar},
		{"NOOP\x7f\r\n", errBadChar},
	} {
		if _, err := parseCommand([]byte(tc.line)); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.line, err, tc.want)
		}
	}
}

func TestParseNumberTakesOnlyDecimalDigits(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "1": 1, "007": 7, "999999999": 999999999} {
		if n, ok := parseNumber(s); !ok || n != want {
			t.Errorf("%q: got %d %v, want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1.0", "0x10", "1e3", "1000000000", "١"} {
		if n, ok := parseNumber(s); ok {
			t.Errorf("%q: accepted as %d", s, n)
		}
	}
}
