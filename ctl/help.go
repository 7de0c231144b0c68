package ctl

import (
	"sort"
	"strings"
)

// Every command's help lives in its group's file (accounts.go has
// accountsHelp, ...); this file finds them and suggests a command for a
// typo.

// helpTexts is the help of each command, by name.
func helpTexts() map[string]string {
	return map[string]string{
		"cluster":       clusterHelp,
		"nodes":         nodesHelp,
		"partitions":    partitionsHelp,
		"ready":         readyHelp,
		"journey":       journeyHelp,
		"accounts":      accountsHelp,
		"messages":      messagesHelp,
		"folders":       foldersHelp,
		"message":       messageHelp,
		"queue":         queueHelp,
		"settings":      settingsHelp,
		"rules":         rulesHelp,
		"account-rules": accountRulesHelp,
		"actors":        actorsHelp,
		"stats":         statsHelp,
		"submit":        submitHelp,
		"domains":       domainsHelp,
		"aliases":       aliasesHelp,
		"dkim":          dkimHelp,
	}
}

// globalFlags closes every command's help.
const globalFlags = `
global flags (before or after the command): --admin ADDR ($HOMING_ADMIN),
--token TOKEN ($HOMING_TOKEN), --json, --timeout D; homing ctl help lists
every command.
`

// helpFor is the help of topic: a command's, or the overview for "".
func helpFor(topic string) string {
	if h, ok := helpTexts()[canonical(topic)]; ok {
		return h + globalFlags
	}
	return usage
}

// commandNames are the commands and their aliases, sorted.
func commandNames() []string {
	var out []string
	for name := range helpTexts() {
		out = append(out, name)
	}
	for a := range aliases {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// nearest is the candidate closest to s by edit distance, if it is close
// enough to be a typo of it (at most a third of its letters, and 2 at
// least, are wrong), "" otherwise; an alias is given as its command.
func nearest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(s)/3) || bestD >= len(s) {
		return ""
	}
	return canonical(best)
}

// editDistance is the Levenshtein distance of a and b (insertions,
// deletions and substitutions of bytes), with a transposition of two
// neighbours counting as one ("qeueu").
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// unknownSub is the usage error for an unknown subcommand sub of cmd: the
// nearest of subs when it is a typo of one, else the list.
func unknownSub(cmd, sub string, subs ...string) error {
	if s := nearest(sub, subs); s != "" {
		return usagef("unknown %s command %q (did you mean %s?)", cmd, sub, s)
	}
	return usagef("unknown %s command %q (%s)", cmd, sub, strings.Join(subs, ", "))
}
