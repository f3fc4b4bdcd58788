package runner

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	envParamPrefix = "ATTUNE_PARAM_"
	envFileSuffix  = "_FILE"
	envExecutionID = "ATTUNE_EXECUTION_ID"
	envAction      = "ATTUNE_ACTION"
)

// Linux refuses to start a process when one environment string exceeds 128 KiB
// (MAX_ARG_STRLEN), or when the arguments and the environment together exceed a quarter of the
// stack limit (2 MiB by default), and the whole environment is copied into every process the
// action starts. So the environment carries parameter values up to maxEnvValue bytes, and up
// to envParamBudget bytes of them in all; the others are written to files it names instead.
// Every parameter also reaches the action on stdin.
const (
	maxEnvValue    = 32 << 10
	envParamBudget = 256 << 10
)

// spillFunc writes the value of the parameter whose variable is named name to a file the
// action may read, and returns the file's path.
type spillFunc func(name, value string) (string, error)

// environment is the worker's own environment, the extra variables of every action (the
// worker's marker), and what the action is told about its execution. Every inherited ATTUNE_*
// variable is dropped: the worker's configuration holds the database and broker URLs with
// their passwords, which an action must not see (its output is stored and served), and a
// worker started from inside an action must not leak its parent's parameters or marker into a
// job that lacks them.
//
// A scalar parameter is ATTUNE_PARAM_<NAME>=value, or, when the value is over maxEnvValue or
// the parameters already took envParamBudget, ATTUNE_PARAM_<NAME>_FILE=path with the value in
// that file, written by spill.
func environment(job Job, extra []string, spill spillFunc) ([]string, error) {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "ATTUNE_")
	})
	env = append(env, extra...)
	env = append(env, job.Env...)
	env = append(env,
		envExecutionID+"="+strconv.FormatInt(job.ExecutionID, 10),
		envAction+"="+job.ActionRef,
	)
	// Sorted so that when two names map to one variable the winner is the same every run, and
	// so that the same values go to files every run.
	names := make([]string, 0, len(job.Parameters))
	for name := range job.Parameters {
		names = append(names, name)
	}
	slices.Sort(names)
	used := 0
	for _, name := range names {
		value, ok := scalarString(job.Parameters[name])
		if !ok {
			continue
		}
		variable := envParamPrefix + envName(name)
		if len(value) <= maxEnvValue && used+len(value) <= envParamBudget {
			used += len(value)
			env = append(env, variable+"="+value)
			continue
		}
		path, err := spill(variable, value)
		if err != nil {
			return nil, fmt.Errorf("write parameter %s to a file: %w", name, err)
		}
		env = append(env, variable+envFileSuffix+"="+path)
	}
	return env, nil
}

// envName upper-cases name and replaces everything but ASCII letters and digits with '_', so
// that any parameter name becomes a variable a shell can expand.
func envName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '_'
		}
	}, name)
}

// scalarString formats a scalar parameter for the environment. Objects and arrays have no
// faithful flat form, so they are reported as not scalar and reach the action on stdin only.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	case float64:
		return formatFloat(v, 64), true
	case float32:
		return formatFloat(float64(v), 32), true
	case int:
		return strconv.Itoa(v), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint:
		return strconv.FormatUint(uint64(v), 10), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	default:
		return "", false
	}
}

// formatFloat writes integral values as integers: parameters decoded from JSON are float64, and
// a count of 3 must reach a script as "3", not "3.0" or "3e+00".
func formatFloat(f float64, bits int) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', 0, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}
