package cluster

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
)

// ErrMetaTooLarge is wrapped by EncodeMeta (and so by Start and UpdateMeta)
// when the encoded metadata does not fit memberlist's node metadata
// (memberlist.MetaMaxSize bytes).
var ErrMetaTooLarge = mail.PermanentError("cluster: node metadata too large")

// ErrBadMeta is wrapped by DecodeMeta when the bytes are not metadata that
// EncodeMeta wrote.
var ErrBadMeta = mail.PermanentError("cluster: malformed node metadata")

// Meta is what a node tells the cluster about itself: memberlist node
// metadata, at most memberlist.MetaMaxSize (512) bytes encoded. It is a
// value type; copy it freely (Roles is cloned wherever Membership hands it
// out).
type Meta struct {
	Cluster    string // cluster name; nodes of another cluster are refused
	Version    string // software version
	Roles      []mail.Role
	QueueMode  mail.QueueMode
	SMTP       string // host:port of the SMTP listener
	Channel    string // host:port of the cluster channel (protoactor remote)
	Admin      string // host:port of the admin HTTP API
	Partitions int    // partition count; nodes with another count are refused
	Static     string // static mode: the partitions this backend owns, e.g. "0-7,12"; "" = dynamic
	// HasData is the part of Static whose data exists in this backend's
	// store (opened there before): of two live backends claiming one
	// static partition, one with its data wins over one without, and a
	// claimant without it never takes over from a dead one that has it.
	HasData string
	// Adopted are partitions an operator moved to this backend at run
	// time (homing ctl partitions move): it owns them whatever the
	// static claims, until it restarts.
	Adopted string
	Started int64 // unix nanoseconds when this process started (tells restarts apart)
	// RulesVersion is the version of the cluster-wide rules this node
	// applies; a member with an older one fetches the newer set.
	RulesVersion int64
	// DomainsVersion is the version of the set of local domains this
	// node applies; a member with an older one fetches the newer set.
	DomainsVersion int64
}

// HasRole reports whether r is one of m's roles.
func (m Meta) HasRole(r mail.Role) bool { return slices.Contains(m.Roles, r) }

// clone returns a copy of m that shares no memory with it.
func (m Meta) clone() Meta {
	m.Roles = slices.Clone(m.Roles)
	return m
}

// metaFlags are Membership's private markers, encoded with Meta but not
// part of it.
type metaFlags struct {
	// leaving is set only in the metadata a node gossips just before it
	// leaves, so that the others record it as left, not dead.
	leaving bool
	// alone marks a node without secret, seeds or Insecure: it refuses
	// every other node, and they refuse it, so that membership stays
	// symmetric.
	alone bool
}

// wireMeta is the encoding of Meta and its flags: JSON with short keys,
// empty fields left out.
type wireMeta struct {
	Cluster        string         `json:"c,omitempty"`
	Version        string         `json:"v,omitempty"`
	Roles          []mail.Role    `json:"r,omitempty"`
	QueueMode      mail.QueueMode `json:"q,omitempty"`
	SMTP           string         `json:"s,omitempty"`
	Channel        string         `json:"ch,omitempty"`
	Admin          string         `json:"a,omitempty"`
	Partitions     int            `json:"p,omitempty"`
	Static         string         `json:"st,omitempty"`
	HasData        string         `json:"hd,omitempty"`
	Adopted        string         `json:"ad,omitempty"`
	Started        int64          `json:"t,omitempty"`
	RulesVersion   int64          `json:"rv,omitempty"`
	DomainsVersion int64          `json:"dv,omitempty"`
	Leaving        bool           `json:"lv,omitempty"`
	Alone          bool           `json:"al,omitempty"`
}

// EncodeMeta encodes m for memberlist. The error wraps ErrMetaTooLarge when
// the encoding is longer than memberlist.MetaMaxSize bytes.
func EncodeMeta(m Meta) ([]byte, error) {
	return encodeMeta(m, metaFlags{})
}

// encodeMeta is EncodeMeta with Membership's flags.
func encodeMeta(m Meta, f metaFlags) ([]byte, error) {
	b, err := json.Marshal(wireMeta{
		Cluster: m.Cluster, Version: m.Version, Roles: m.Roles, QueueMode: m.QueueMode,
		SMTP: m.SMTP, Channel: m.Channel, Admin: m.Admin, Partitions: m.Partitions,
		Static: m.Static, HasData: m.HasData, Adopted: m.Adopted, Started: m.Started, Leaving: f.leaving, Alone: f.alone, RulesVersion: m.RulesVersion,
		DomainsVersion: m.DomainsVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: encoding node metadata: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d (shorten the addresses, version or static partition list)",
			ErrMetaTooLarge, len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes what EncodeMeta wrote. Unknown keys are ignored, so
// newer nodes may add some. The error wraps ErrBadMeta.
func DecodeMeta(b []byte) (Meta, error) {
	m, _, err := decodeMeta(b)
	return m, err
}

// decodeMeta is DecodeMeta that also returns Membership's flags.
func decodeMeta(b []byte) (Meta, metaFlags, error) {
	if len(b) == 0 {
		return Meta{}, metaFlags{}, fmt.Errorf("%w: empty", ErrBadMeta)
	}
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, metaFlags{}, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	return Meta{
		Cluster: w.Cluster, Version: w.Version, Roles: w.Roles, QueueMode: w.QueueMode,
		SMTP: w.SMTP, Channel: w.Channel, Admin: w.Admin, Partitions: w.Partitions,
		Static: w.Static, HasData: w.HasData, Adopted: w.Adopted, Started: w.Started, RulesVersion: w.RulesVersion, DomainsVersion: w.DomainsVersion,
	}, metaFlags{leaving: w.Leaving, alone: w.Alone}, nil
}
