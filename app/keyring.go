package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

// keyringConfig says where the encryption keys come from. The keys themselves have no flag:
// a flag would show in ps and in shell history.
type keyringConfig struct {
	file string
}

func registerKeyringFlags(fs *pflag.FlagSet, c *keyringConfig) {
	fs.StringVar(&c.file, "encryption-key-file", "", "file of encryption keys, one per line in base64 or hex: the first seals new secret values, the others still open older ones; "+
		"instead, ATTUNE_ENCRYPTION_KEY holds the key and ATTUNE_ENCRYPTION_OLD_KEYS a comma list of older ones; with neither, a key is generated and kept in PostgreSQL")
	cli.BindEnv(fs, "encryption-key-file", "ATTUNE_ENCRYPTION_KEY_FILE")
}

// configuredKeys reads the keys configured for this process: the current one first. None
// configured is no error.
func (c keyringConfig) configuredKeys() ([]seal.Key, error) {
	env, old := os.Getenv("ATTUNE_ENCRYPTION_KEY"), os.Getenv("ATTUNE_ENCRYPTION_OLD_KEYS")
	var texts []string
	var source string
	switch {
	case c.file != "" && env != "":
		return nil, errors.New("both --encryption-key-file (or ATTUNE_ENCRYPTION_KEY_FILE) and ATTUNE_ENCRYPTION_KEY are set: configure the keys in one place")
	case c.file != "" && old != "":
		return nil, errors.New("both --encryption-key-file (or ATTUNE_ENCRYPTION_KEY_FILE) and ATTUNE_ENCRYPTION_OLD_KEYS are set: " +
			"with a key file, the older keys are its later lines")
	case c.file != "":
		b, err := os.ReadFile(c.file)
		if err != nil {
			return nil, fmt.Errorf("read --encryption-key-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				texts = append(texts, line)
			}
		}
		if len(texts) == 0 {
			return nil, fmt.Errorf("--encryption-key-file %s holds no key", c.file)
		}
		source = c.file
	case env != "":
		texts = []string{env}
		source = "ATTUNE_ENCRYPTION_KEY"
	case old != "":
		return nil, errors.New("ATTUNE_ENCRYPTION_OLD_KEYS is set without ATTUNE_ENCRYPTION_KEY: older keys open values, a current one is needed to seal them")
	}
	if env != "" && old != "" {
		texts = append(texts, strings.Split(old, ",")...)
	}
	keys := make([]seal.Key, 0, len(texts))
	for i, t := range texts {
		k, err := seal.ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("%s, key %d: %w", source, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// keyStore is what the keyring reads of the database.
type keyStore interface {
	GeneratedKey(ctx context.Context) (id, material string, err error)
	GeneratedKeyCreate(ctx context.Context, id, material string) (storedID, stored string, created bool, err error)
}

// openKeyring builds the process's keyring: the configured keys, plus the key Attune
// generated in PostgreSQL if there is one, which opens what it sealed before a key was
// configured. With no key configured, the generated key seals too (generated on the first
// start), and every start warns that it sits beside the data.
func openKeyring(ctx context.Context, st keyStore, c keyringConfig, logger *slog.Logger) (*seal.Keyring, error) {
	keys, err := c.configuredKeys()
	if err != nil {
		return nil, err
	}
	generated, err := readGeneratedKey(ctx, st)
	if err != nil {
		return nil, err
	}
	log := logger.With("module", "keyring")
	if len(keys) == 0 {
		if generated.IsZero() {
			if generated, err = createGeneratedKey(ctx, st, log); err != nil {
				return nil, err
			}
		}
		log.WarnContext(ctx, "secret values are sealed with the encryption key Attune generated in PostgreSQL, beside the data it protects; "+
			"set ATTUNE_ENCRYPTION_KEY or --encryption-key-file, then run `attune key rotate`", "key_id", generated.ID())
		return seal.NewKeyring(generated)
	}
	if !generated.IsZero() {
		keys = append(keys, generated)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	log.InfoContext(ctx, "encryption keys loaded", "current_key_id", ids[0], "key_ids", ids)
	return seal.NewKeyring(keys[0], keys[1:]...)
}

func readGeneratedKey(ctx context.Context, st keyStore) (seal.Key, error) {
	id, material, err := st.GeneratedKey(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return seal.Key{}, nil
	}
	if err != nil {
		return seal.Key{}, err
	}
	return parseStoredKey(id, material)
}

func createGeneratedKey(ctx context.Context, st keyStore, log *slog.Logger) (seal.Key, error) {
	k, err := seal.NewKey()
	if err != nil {
		return seal.Key{}, err
	}
	id, material, created, err := st.GeneratedKeyCreate(ctx, k.ID(), k.String())
	if err != nil {
		return seal.Key{}, err
	}
	if created {
		log.WarnContext(ctx, "generated an encryption key and stored it in PostgreSQL", "key_id", id)
	}
	return parseStoredKey(id, material)
}

func parseStoredKey(id, material string) (seal.Key, error) {
	k, err := seal.ParseKey(material)
	if err == nil && k.ID() != id {
		err = fmt.Errorf("its id should be %s", k.ID())
	}
	if err != nil {
		return seal.Key{}, fmt.Errorf("the encryption key stored in attune.generated_key (id %s) is damaged: %w", id, err)
	}
	return k, nil
}
