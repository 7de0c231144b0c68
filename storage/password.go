package storage

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/homing-mail/homing/mail"
)

// argon2id parameters for new hashes: OWASP's Password Storage Cheat Sheet
// minimum (m=19 MiB, t=2, p=1), a 16-byte salt and a 32-byte key (RFC 9106
// §4 recommends 128-bit salts and 256-bit tags).
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Limits on parameters read from a stored hash, so that a hostile or
// corrupted hash cannot make VerifyPassword allocate gigabytes or spin.
const (
	argonMaxMemory = 1 << 20 // KiB (1 GiB)
	argonMaxTime   = 64
	argonMaxKeyLen = 1024
)

// ErrMalformedHash is wrapped by VerifyPassword when the stored hash cannot
// be parsed.
var ErrMalformedHash = mail.PermanentError("storage: malformed password hash")

// ErrEmptyPassword is returned by HashPassword for "".
var ErrEmptyPassword = mail.PermanentError("storage: empty password")

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash of password in the PHC string
// format, "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" (unpadded standard
// base64), with a fresh 16-byte salt from crypto/rand. It takes about as
// much CPU and 19 MiB of memory as one verification. Safe for concurrent
// use.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", ErrEmptyPassword
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("storage: password salt: %w", err)
	}
	k := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(k)), nil
}

// VerifyPassword reports whether password matches hash, which is either an
// argon2id PHC string (any parameters within sane limits) or a bcrypt hash
// ($2a$, $2b$, $2y$). The comparison is constant-time. The error is non-nil
// (wrapping ErrMalformedHash) only when hash cannot be parsed; a wrong
// password is (false, nil). Safe for concurrent use.
func VerifyPassword(hash, password string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return verifyArgon2id(hash, password)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return verifyBcrypt(hash, password)
	default:
		return false, fmt.Errorf("%w: unknown scheme", ErrMalformedHash)
	}
}

// CheckHash reports whether hash is a password hash VerifyPassword can
// use, without computing anything expensive: an error wrapping
// ErrMalformedHash if not. The admin API uses it to import hashes.
func CheckHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon2id(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if len(hash) != bcryptHashLen {
			return fmt.Errorf("%w: bcrypt: %d characters, want %d", ErrMalformedHash, len(hash), bcryptHashLen)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("%w: bcrypt: %w", ErrMalformedHash, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown scheme", ErrMalformedHash)
	}
}

type argon2idHash struct {
	m, t, p   uint64
	salt, key []byte
}

func parseArgon2id(hash string) (argon2idHash, error) {
	var h argon2idHash
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(hash, "$")
	if len(f) != 6 {
		return h, fmt.Errorf("%w: argon2id: want 5 fields", ErrMalformedHash)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("%w: argon2id: unsupported version %q", ErrMalformedHash, f[2])
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return h, fmt.Errorf("%w: argon2id: parameters %q", ErrMalformedHash, f[3])
	}
	for i, want := range []struct {
		name string
		dst  *uint64
		max  uint64
	}{{"m", &h.m, argonMaxMemory}, {"t", &h.t, argonMaxTime}, {"p", &h.p, 255}} {
		name, val, ok := strings.Cut(params[i], "=")
		if !ok || name != want.name {
			return h, fmt.Errorf("%w: argon2id: parameters %q", ErrMalformedHash, f[3])
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 || n > want.max {
			return h, fmt.Errorf("%w: argon2id: parameter %s=%q out of range", ErrMalformedHash, name, val)
		}
		*want.dst = n
	}
	if h.m < 8*h.p {
		return h, fmt.Errorf("%w: argon2id: m=%d below 8*p", ErrMalformedHash, h.m)
	}
	var err error
	h.salt, err = b64.DecodeString(f[4])
	if err != nil || len(h.salt) < 8 {
		return h, fmt.Errorf("%w: argon2id: salt", ErrMalformedHash)
	}
	h.key, err = b64.DecodeString(f[5])
	if err != nil || len(h.key) < 4 || len(h.key) > argonMaxKeyLen {
		return h, fmt.Errorf("%w: argon2id: key", ErrMalformedHash)
	}
	return h, nil
}

func verifyArgon2id(hash, password string) (bool, error) {
	h, err := parseArgon2id(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), h.salt, uint32(h.t), uint32(h.m), uint8(h.p), uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

// bcryptHashLen: "$2b$" + 2 cost digits + "$" + 22 salt + 31 hash characters.
const bcryptHashLen = 60

func verifyBcrypt(hash, password string) (bool, error) {
	if len(hash) != bcryptHashLen {
		return false, fmt.Errorf("%w: bcrypt: %d characters, want %d", ErrMalformedHash, len(hash), bcryptHashLen)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return false, fmt.Errorf("%w: bcrypt: %w", ErrMalformedHash, err)
	}
	// CompareHashAndPassword compares in constant time.
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %w", ErrMalformedHash, err)
	}
}
