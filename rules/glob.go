package rules

import "unicode/utf8"

// glob reports whether s matches pattern, where '*' matches any run of
// characters (also none) and '?' exactly one. It works on runes and takes
// O(len(pattern)·len(s)) time in the worst case: on a mismatch it only
// backtracks to the last '*'.
func glob(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pc, pw := utf8.DecodeRuneInString(pattern[p:]); pc {
			case '*':
				starP, starI = p, i
				p += pw
				continue
			case '?':
				_, sw := utf8.DecodeRuneInString(s[i:])
				p, i = p+pw, i+sw
				continue
			default:
				sc, sw := utf8.DecodeRuneInString(s[i:])
				if pc == sc && (pc != utf8.RuneError || pattern[p] == s[i]) {
					p, i = p+pw, i+sw
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' take one more rune and try again from there.
		_, sw := utf8.DecodeRuneInString(s[starI:])
		starI += sw
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
