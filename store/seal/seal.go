// Package seal encrypts the values Attune keeps secret at rest (secret datastore keys, secret
// execution parameters) with AES-256-GCM under a named key, as text tokens that travel inside
// JSON unchanged, through rows and messages, until a worker opens them.
//
// A token reads "attune:sealed:v1:<key id>:<base64url of nonce and ciphertext>~". It is text
// rather than a JSON object so that a template may place it inside a longer string ("Bearer
// {{ kv.system.token }}") and the worker still finds and opens it there. The key id is derived
// from the key itself, so every process that holds a key names it the same way without
// coordination, and a process that lacks the key a token needs says which one.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Prefix starts every token.
const Prefix = "attune:sealed:v1:"

// KeySize is the size of a key in bytes: AES-256.
const KeySize = 32

var (
	// ErrUnknownKey is returned when a token names a key the keyring does not hold.
	ErrUnknownKey = errors.New("sealed with an encryption key that is not configured")
	// ErrDamaged is returned when a token does not open under the key it names: it was
	// altered, or the key configured under that id is not the one that sealed it.
	ErrDamaged = errors.New("sealed value does not open: damaged, or sealed under another key")
	// ErrMalformed is returned for text that starts like a token but is not one.
	ErrMalformed = errors.New("malformed sealed value")
)

// tokenPattern matches a token anywhere in a string. Key ids are lower-case hex after a "k";
// the payload is unpadded base64url, closed by End so that a template may write text of the
// same alphabet right after a token ("{{ kv.system.token }}-v2") without it running on.
var tokenPattern = regexp.MustCompile(`attune:sealed:v1:(k[0-9a-f]{8,}):([A-Za-z0-9_-]+)~`)

// End closes every token; it needs no escaping in JSON.
const End = "~"

func token(id, payload string) string { return Prefix + id + ":" + payload + End }

// Key is one AES-256 key and its id.
type Key struct {
	id       string
	material []byte
}

// NewKey returns a random key.
func NewKey() (Key, error) {
	material := make([]byte, KeySize)
	if _, err := rand.Read(material); err != nil {
		return Key{}, fmt.Errorf("generate an encryption key: %w", err)
	}
	return keyOf(material), nil
}

// ParseKey reads a key written as 32 bytes in base64 (standard or URL alphabet, padded or
// not) or in hex, the forms `openssl rand -base64 32` and `openssl rand -hex 32` print.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("encryption key is empty")
	}
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	}
	for _, decode := range decoders {
		if b, err := decode(s); err == nil && len(b) == KeySize {
			return keyOf(b), nil
		}
	}
	return Key{}, fmt.Errorf("encryption key must be %d random bytes in base64 or hex (for example the output of `openssl rand -base64 32`); got %d characters that are neither", KeySize, len(s))
}

func keyOf(material []byte) Key {
	sum := sha256.Sum256(append([]byte("attune encryption key id\x00"), material...))
	return Key{id: "k" + hex.EncodeToString(sum[:6]), material: material}
}

// ID is the key's id, derived from the key: the same key has the same id everywhere.
func (k Key) ID() string { return k.id }

// String encodes the key in base64, the form ParseKey reads and a key file holds.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k.material) }

// IsZero reports whether k is the zero Key.
func (k Key) IsZero() bool { return k.id == "" }

// Keyring seals under its current key and opens under any key it holds. It is safe for
// concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	// nonceKey derives the nonces of SealSynthetic from the current key.
	nonceKey []byte
}

// NewKeyring returns a keyring that seals under current and also opens what older keys
// sealed (the keys a rotation moves away from).
func NewKeyring(current Key, older ...Key) (*Keyring, error) {
	if current.IsZero() {
		return nil, errors.New("new keyring: no current encryption key")
	}
	nk := sha256.Sum256(append([]byte("attune synthetic nonce key\x00"), current.material...))
	r := &Keyring{current: current.id, aeads: make(map[string]cipher.AEAD, 1+len(older)), nonceKey: nk[:]}
	for _, k := range append([]Key{current}, older...) {
		block, err := aes.NewCipher(k.material)
		if err != nil {
			return nil, fmt.Errorf("new keyring: key %s: %w", k.id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("new keyring: key %s: %w", k.id, err)
		}
		r.aeads[k.id] = aead
	}
	return r, nil
}

// CurrentID is the id of the key new tokens are sealed under.
func (r *Keyring) CurrentID() string { return r.current }

// Has reports whether the keyring holds the key of id.
func (r *Keyring) Has(id string) bool {
	_, ok := r.aeads[id]
	return ok
}

// Seal encrypts plain under the current key and returns its token.
func (r *Keyring) Seal(plain []byte) (string, error) {
	aead := r.aeads[r.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	// The key id is authenticated with the text, so a token cannot be relabelled.
	sealed := aead.Seal(nonce, nonce, plain, []byte(r.current))
	return token(r.current, base64.RawURLEncoding.EncodeToString(sealed)), nil
}

// SealSynthetic is Seal with the nonce derived from the text (an HMAC under a key of its own
// derived from the current key), so that equal texts sealed under one key give equal tokens.
// Nonces repeat only for equal texts, where GCM reveals nothing but that equality. Secret
// parameters are sealed this way so that a policy that groups executions by one still groups
// them (the group key is the sealed text).
func (r *Keyring) SealSynthetic(plain []byte) string {
	aead := r.aeads[r.current]
	mac := hmac.New(sha256.New, r.nonceKey)
	mac.Write(plain)
	nonce := mac.Sum(nil)[:aead.NonceSize()]
	sealed := aead.Seal(slices.Clip(nonce), nonce, plain, []byte(r.current))
	return token(r.current, base64.RawURLEncoding.EncodeToString(sealed))
}

// Open decrypts a token. The error names the key id when the keyring lacks it.
func (r *Keyring) Open(token string) ([]byte, error) {
	m := tokenPattern.FindStringSubmatch(token)
	if m == nil || m[0] != token {
		return nil, ErrMalformed
	}
	return r.open(m[1], m[2])
}

func (r *Keyring) open(id, payload string) ([]byte, error) {
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrMalformed
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w (key id %s)", ErrDamaged, id)
	}
	return plain, nil
}

// IsToken reports whether s is exactly one token.
func IsToken(s string) bool {
	m := tokenPattern.FindStringIndex(s)
	return m != nil && m[0] == 0 && m[1] == len(s)
}

// Contains reports whether s holds a token anywhere.
func Contains(s string) bool { return strings.Contains(s, Prefix) }

// looseToken matches a token, or the start of one that a message cut short.
var looseToken = regexp.MustCompile(regexp.QuoteMeta(Prefix) + `[A-Za-z0-9_:-]*` + End + `?`)

// ReplaceTokens returns s with every token in it, whole or cut short, replaced by with: for
// text that quotes a sealed value (an error about the value a template computed with).
func ReplaceTokens(s, with string) string {
	if !Contains(s) {
		return s
	}
	return looseToken.ReplaceAllLiteralString(s, with)
}

// KeyIDs returns the ids of the keys the tokens in s were sealed under, each once.
func KeyIDs(s string) []string {
	var ids []string
	seen := map[string]bool{}
	for _, m := range tokenPattern.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
	}
	return ids
}

// replaceTokens replaces every token in s by what with returns for it, stopping at the first
// error.
func replaceTokens(s string, with func(id, payload string) (string, error)) (string, error) {
	var firstErr error
	out := tokenPattern.ReplaceAllStringFunc(s, func(tok string) string {
		if firstErr != nil {
			return tok
		}
		m := tokenPattern.FindStringSubmatch(tok)
		repl, err := with(m[1], m[2])
		if err != nil {
			firstErr = err
			return tok
		}
		return repl
	})
	return out, firstErr
}
