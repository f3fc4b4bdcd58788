package app_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// --password-stdin tells an empty line, an empty password, from a stdin that ends too soon;
// both stop before any request (the URL answers nothing).
func TestPasswordStdinEmpty(t *testing.T) {
	t.Parallel()
	login := []string{"login", "admin", "--password-stdin", "--api-url", "http://127.0.0.1:1"}
	create := []string{"identity", "create", "ada", "--role", "viewer", "--password-stdin", "--api-url", "http://127.0.0.1:1"}
	for name, c := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"LoginEmptyLine":  {"\n", login, "attune: --password-stdin: the password on line 1 of stdin is empty\n"},
		"LoginCRLF":       {"\r\n", login, "attune: --password-stdin: the password on line 1 of stdin is empty\n"},
		"LoginNoInput":    {"", login, "attune: --password-stdin: stdin is empty\n"},
		"CreateEmptyLine": {"\n", create, "attune: --password-stdin: the password on line 1 of stdin is empty\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runAttuneWith(t, c.stdin, nil, c.args...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Equal(t, c.want, requireOneErrorLine(t, stderr))
		})
	}
}
