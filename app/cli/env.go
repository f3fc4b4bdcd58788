package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

const envAnnotation = "attune_env"

// BindEnv mirrors a flag with an environment variable and says so in the flag's help.
func BindEnv(fs *pflag.FlagSet, flag, env string) {
	f := fs.Lookup(flag)
	if f == nil {
		panic("BindEnv: no flag " + flag)
	}
	f.Usage += " (env " + env + ")"
	_ = fs.SetAnnotation(flag, envAnnotation, []string{env})
}

// ApplyEnv gives every flag not set on the command line the value of its environment
// variable, if that is set: flag > env > default.
func ApplyEnv(fs *pflag.FlagSet) error {
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[envAnnotation]
		if f.Changed || len(envs) == 0 || firstErr != nil {
			return
		}
		v, ok := os.LookupEnv(envs[0])
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			firstErr = fmt.Errorf("invalid %s=%q: %v", envs[0], v, err)
		}
	})
	return firstErr
}
