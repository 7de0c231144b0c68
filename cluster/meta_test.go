package cluster

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/homing-mail/homing/mail"
)

func fullMeta() Meta {
	return Meta{
		Cluster: "prod", Version: "1.2.3", Roles: []mail.Role{mail.RoleFrontend, mail.RoleBackend},
		QueueMode: "locally-for-others", SMTP: "10.0.0.1:25", Channel: "10.0.0.1:7947",
		Admin: "10.0.0.1:8025", Partitions: 16, Static: "0-7,12", Started: 1732838400123456789,
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{fullMeta(), {Partitions: 1}, {Cluster: "x", Roles: []mail.Role{}}} {
		b, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("EncodeMeta(%+v): %v", m, err)
		}
		if len(b) > memberlist.MetaMaxSize {
			t.Fatalf("encoded %d bytes", len(b))
		}
		got, err := DecodeMeta(b)
		if err != nil {
			t.Fatalf("DecodeMeta(%s): %v", b, err)
		}
		if len(m.Roles) == 0 {
			m.Roles = nil // an empty role list is left out
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestMetaEncodingIsCompact(t *testing.T) {
	b, err := EncodeMeta(fullMeta())
	if err != nil {
		t.Fatal(err)
	}
	// Short keys: a full Meta with realistic values stays far below 512.
	if len(b) > 256 {
		t.Fatalf("full meta takes %d bytes: %s", len(b), b)
	}
	if strings.Contains(string(b), "Cluster") || strings.Contains(string(b), "QueueMode") {
		t.Fatalf("long keys in %s", b)
	}
}

func TestMetaSizeLimit(t *testing.T) {
	m := fullMeta()
	m.Static = strings.Repeat("1,", 300)
	_, err := EncodeMeta(m)
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("EncodeMeta of a %d-byte static list: err %v, want ErrMetaTooLarge", len(m.Static), err)
	}
	if !strings.Contains(err.Error(), "512") {
		t.Fatalf("error does not name the limit: %v", err)
	}

	// Exactly at the limit is fine, one byte more is not.
	base, _ := EncodeMeta(Meta{Partitions: 1, Static: ""})
	m = Meta{Partitions: 1, Static: strings.Repeat("x", memberlist.MetaMaxSize-len(base)-len(`,"st":""`))}
	if b, err := EncodeMeta(m); err != nil || len(b) != memberlist.MetaMaxSize {
		t.Fatalf("meta of exactly %d bytes: len %d, err %v", memberlist.MetaMaxSize, len(b), err)
	}
	m.Static += "x"
	if _, err := EncodeMeta(m); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("meta of %d bytes: err %v", memberlist.MetaMaxSize+1, err)
	}
}

func TestDecodeMetaRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "null x", `{"p":"sixteen"}`, `[1,2]`, "\x00\x01"} {
		if _, err := DecodeMeta([]byte(in)); !errors.Is(err, ErrBadMeta) {
			t.Errorf("DecodeMeta(%q): err %v, want ErrBadMeta", in, err)
		}
	}
}

func TestDecodeMetaIgnoresUnknownKeysAndTheFlags(t *testing.T) {
	m, err := DecodeMeta([]byte(`{"c":"prod","p":4,"future":[1],"lv":true,"al":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cluster != "prod" || m.Partitions != 4 {
		t.Fatalf("got %+v", m)
	}
	b, err := encodeMeta(m, metaFlags{leaving: true, alone: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, f, err := decodeMeta(b); err != nil || !f.leaving || !f.alone {
		t.Fatalf("flags lost: %s (err %v)", b, err)
	}
	if plain, _ := EncodeMeta(m); strings.Contains(string(plain), "lv") || strings.Contains(string(plain), "al") {
		t.Fatalf("EncodeMeta wrote a flag: %s", plain)
	}
}

func TestMetaHasRole(t *testing.T) {
	m := Meta{Roles: []mail.Role{mail.RoleFrontend}}
	if !m.HasRole(mail.RoleFrontend) || m.HasRole(mail.RoleBackend) || (Meta{}).HasRole(mail.RoleBackend) {
		t.Fatalf("HasRole wrong for %v", m.Roles)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := EncodeMeta(fullMeta())
	f.Add(good)
	f.Add([]byte(`{"r":null,"p":-1}`))
	f.Add([]byte(`{"t":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		// What decodes re-encodes (when it fits) to the same Meta.
		enc, err := EncodeMeta(m)
		if err != nil {
			if !errors.Is(err, ErrMetaTooLarge) {
				t.Fatalf("EncodeMeta(%+v): %v", m, err)
			}
			return
		}
		again, err := DecodeMeta(enc)
		if err != nil || !sameMeta(again, m) {
			t.Fatalf("re-decode of %s: %+v (err %v), want %+v", enc, again, err, m)
		}
	})
}
