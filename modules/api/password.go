package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2id settings: OWASP's recommended minimum (19 MiB, two passes, one lane). They are
// written into each hash, so raising them later leaves existing hashes verifiable.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16

	minPasswordLen = 8
	maxPasswordLen = 256
)

var b64 = base64.RawStdEncoding

// hashPassword returns password's Argon2id hash as a PHC string.
func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches a hash made by hashPassword, in time that
// does not depend on where the two differ.
func checkPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password hash: not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	var memory, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &passes, &threads); err != nil {
		return false, fmt.Errorf("password hash: parameters %q: %w", parts[3], err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("password hash: key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, passes, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// checkNewPassword refuses passwords too short to be worth hashing, or too long to hash
// cheaply; its error is the API's answer about the body's password.
func checkNewPassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPasswordLen:
		return fieldError("password", "password: at least %d characters", minPasswordLen)
	case len(password) > maxPasswordLen:
		return fieldError("password", "password: at most %d bytes", maxPasswordLen)
	}
	return nil
}

// HashNewPassword checks a new password as the API checks every one, and hashes it as the API
// stores it: for "attune identity reset-password", which sets one in the database directly.
func HashNewPassword(password string) (string, error) {
	if err := checkNewPassword(password); err != nil {
		return "", err
	}
	return hashPassword(password)
}

// GeneratePassword makes a password as the first admin's is made when none is configured.
func GeneratePassword() (string, error) { return randomSecret(18) }

// randomSecret returns n random bytes, base64url-encoded without padding.
func randomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
