package runner

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	envParamPrefix = "ATTUNE_PARAM_"
	envExecutionID = "ATTUNE_EXECUTION_ID"
	envAction      = "ATTUNE_ACTION"
)

// environment is the worker's own environment plus what the action is told about its
// execution. Every inherited ATTUNE_* variable is dropped: the worker's configuration holds
// the database and broker URLs with their passwords, which an action must not see (its
// output is stored and served), and a worker started from inside an action must not leak its
// parent's parameters into a job that lacks them.
func environment(job Job) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "ATTUNE_")
	})
	env = append(env,
		envExecutionID+"="+strconv.FormatInt(job.ExecutionID, 10),
		envAction+"="+job.ActionRef,
	)
	// Sorted so that when two names map to one variable the winner is the same every run.
	names := make([]string, 0, len(job.Parameters))
	for name := range job.Parameters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if value, ok := scalarString(job.Parameters[name]); ok {
			env = append(env, envParamPrefix+envName(name)+"="+value)
		}
	}
	return env
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
