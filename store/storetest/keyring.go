package storetest

import (
	"testing"

	"github.com/attune-go/attune/store/seal"
)

// Keyring returns a keyring of a fresh random key, for modules that seal or open secret
// values in a test.
func Keyring(t testing.TB) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
