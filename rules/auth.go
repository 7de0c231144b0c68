package rules

import (
	"regexp"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// dkimRank orders DKIM results: of several signatures, the best counts.
var dkimRank = map[string]int{"pass": 5, "temperror": 4, "fail": 3, "permerror": 2, "neutral": 1}

// policyParam finds the "policy.dmarc" property the cluster writes (the
// library keeps only the properties it knows).
var policyParam = regexp.MustCompile(`(?i)(^|[\s;])policy\.dmarc=([a-z]+)`)

// knownAuthMethod reports whether an "auth." condition may name method.
func knownAuthMethod(method string) bool {
	return method == "spf" || method == "dkim" || method == "dmarc"
}

// AuthResults reads the results of the topmost Authentication-Results
// field of h whose authserv-id is authservID (RFC 8601 §2.2): the one the
// cluster wrote when the message came in (the cluster removes others with
// its id, so no sender can forge it). It returns method -> result (DKIM:
// the best of its signatures, "pass" if any passed), and "dmarc.policy"
// -> what the cluster applied (quarantine) when it applied anything; nil
// without such a field.
func AuthResults(h Header, authservID string) map[string]string {
	if authservID == "" {
		return nil
	}
	for _, f := range h {
		if !strings.EqualFold(f.Name, "Authentication-Results") {
			continue
		}
		id, results, err := authres.Parse(f.Value)
		if err != nil || !strings.EqualFold(id, authservID) {
			continue
		}
		out := map[string]string{}
		for _, r := range results {
			method, value := "", ""
			switch r := r.(type) {
			case *authres.SPFResult:
				method, value = "spf", string(r.Value)
			case *authres.DKIMResult:
				method, value = "dkim", string(r.Value)
			case *authres.DMARCResult:
				method, value = "dmarc", string(r.Value)
			case *authres.GenericResult:
				method, value = r.Method, string(r.Value)
			}
			if method == "" || method == "dkim" && dkimRank[out["dkim"]] > dkimRank[value] {
				continue
			}
			out[method] = value
		}
		if m := policyParam.FindStringSubmatch(f.Value); m != nil {
			out["dmarc.policy"] = strings.ToLower(m[2])
		}
		return out
	}
	return nil
}

// Quarantined reports whether the cluster's own checks filed the message
// in Junk (DMARC p=quarantine, or a reject policy softened to it).
func Quarantined(h Header, authservID string) bool {
	return AuthResults(h, authservID)["dmarc.policy"] == "quarantine"
}
