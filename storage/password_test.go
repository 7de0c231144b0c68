package storage

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string with the OWASP parameters", h)
	}
	parts := strings.Split(h, "$")
	if salt, _ := b64.DecodeString(parts[4]); len(salt) != 16 {
		t.Fatalf("salt of %d bytes, want 16", len(salt))
	}
	ok, err := VerifyPassword(h, "correct horse battery staple")
	if err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v", ok, err)
	}
	ok, err = VerifyPassword(h, "correct horse battery stapler")
	if err != nil || ok {
		t.Fatalf("Verify(wrong password) = %v, %v", ok, err)
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if _, err := HashPassword(""); !errors.Is(err, ErrEmptyPassword) {
		t.Fatalf("HashPassword(\"\") = %v", err)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	raw, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(raw) // $2a$
	for _, v := range []string{h, "$2b$" + h[4:], "$2y$" + h[4:]} {
		if ok, err := VerifyPassword(v, "hunter2"); err != nil || !ok {
			t.Errorf("Verify(%s, right) = %v, %v", v[:4], ok, err)
		}
		if ok, err := VerifyPassword(v, "hunter3"); err != nil || ok {
			t.Errorf("Verify(%s, wrong) = %v, %v", v[:4], ok, err)
		}
	}
	if ok, err := VerifyPassword(h, strings.Repeat("p", 100)); err != nil || ok {
		t.Errorf("Verify(bcrypt, 100-byte password) = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	good, _ := HashPassword("pw")
	parts := strings.Split(good, "$")
	bcryptHash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, h := range map[string]string{
		"empty":          "",
		"plain text":     "pw",
		"unknown scheme": "$argon2i$v=19$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5],
		"md5-crypt":      "$1$salt$hash",
		"missing key":    strings.Join(parts[:5], "$"),
		"extra field":    good + "$x",
		"bad version":    strings.Replace(good, "v=19", "v=16", 1),
		"bad params":     strings.Replace(good, "m=19456,t=2,p=1", "m=19456,t=2", 1),
		"param order":    strings.Replace(good, "m=19456,t=2,p=1", "t=2,m=19456,p=1", 1),
		"zero time":      strings.Replace(good, "t=2", "t=0", 1),
		"huge memory":    strings.Replace(good, "m=19456", "m=4294967295", 1),
		"bad salt":       strings.Replace(good, parts[4], "!!!", 1),
		"bad key":        strings.Replace(good, parts[5], "%%%", 1),
		"short bcrypt":   string(bcryptHash[:40]),
		"bcrypt cost":    "$2a$99" + string(bcryptHash[6:]),
		"bcrypt salt":    string(bcryptHash[:7]) + strings.Repeat("!", 53),
	} {
		ok, err := VerifyPassword(h, "pw")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: Verify(%q) = %v, %v; want false, ErrMalformedHash", name, h, ok, err)
		}
	}
}

func TestCheckHash(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHash(h); err != nil {
		t.Fatalf("CheckHash(argon2id) = %v", err)
	}
	bh, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHash(string(bh)); err != nil {
		t.Fatalf("CheckHash(bcrypt) = %v", err)
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=1,t=1,p=1$x$y", "$2b$10$short"} {
		if err := CheckHash(bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("CheckHash(%q) = %v, want ErrMalformedHash", bad, err)
		}
	}
}
