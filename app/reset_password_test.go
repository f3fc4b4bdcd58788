package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// A lost admin password is reset in the database, with the server running: the new one logs
// in, the old one no longer does, and the sessions from before end.
func TestResetPassword(t *testing.T) {
	t.Parallel()
	db := storetest.NewDatabase(t)
	p := startServe(t, "--database-url="+db)
	apiURL := "http://" + p.addr
	p.authToken(t) // the server makes the first admin after it says it is ready: wait for it
	cfg := []string{"ATTUNE_CONFIG=" + filepath.Join(t.TempDir(), "config.yaml")}
	login := func(password string) (string, int) {
		t.Helper()
		_, stderr, code := runAttuneWith(t, password+"\n", cfg, "login", "admin", "--password-stdin", "--api-url", apiURL)
		return stderr, code
	}
	stderr, code := login(testAdminPassword)
	require.Equal(t, 0, code, stderr)

	stdout, stderr, code := runAttuneWith(t, "a-new-password\n", nil, "identity", "reset-password", "admin", "--password-stdin", "--database-url", db)
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	require.Equal(t, "reset the password of admin; the sessions it had have ended\n", stdout)

	_, stderr, code = runAttuneEnv(t, cfg, "whoami")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "log in again", "the session from before the reset ended")
	stderr, code = login(testAdminPassword)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "invalid login or password")
	stderr, code = login("a-new-password")
	require.Equal(t, 0, code, stderr)

	// A generated password, printed once; the URL from the environment this time.
	stdout, stderr, code = runAttuneEnv(t, []string{"ATTUNE_DATABASE_URL=" + db}, "identity", "reset-password", "admin", "--generate")
	require.Equal(t, 0, code, stderr)
	m := regexp.MustCompile(`(?m)^new password \(shown this once\): (\S+)$`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	stderr, code = login("a-new-password")
	require.Equal(t, 1, code, stderr)
	stderr, code = login(m[1])
	require.Equal(t, 0, code, stderr)

	// Refusals: one line each, and nothing changed.
	url := "--database-url=" + db
	for name, c := range map[string]struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		"UnknownLogin": {"a-new-password\n", []string{"nobody", "--password-stdin", url}, 1, `attune: reset the password of nobody: no identity "nobody" in this database` + "\n"},
		"EmptyLine":    {"\n", []string{"admin", "--password-stdin", url}, 2, "attune: --password-stdin: the password on line 1 of stdin is empty\n"},
		"TooShort":     {"short\n", []string{"admin", "--password-stdin", url}, 2, "attune: password: at least 8 characters\n"},
		"NoTerminal":   {"", []string{"admin", url}, 2, "attune: no terminal to ask for the password on; pipe it in with --password-stdin\n"},
		"BothSources":  {"", []string{"admin", "--password-stdin", "--generate", url}, 2, "attune: give --password-stdin or --generate, not both\n"},
		"APIURL":       {"", []string{"admin", "--generate", "--api-url", apiURL, url}, 2, "attune: --api-url does not apply: reset-password changes the database itself (--database-url), not through the API\n"},
		"NoLogin":      {"", []string{url}, 2, ""},
		"Unreachable":  {"", []string{"admin", "--generate", "--database-url=postgres://127.0.0.1:1/attune"}, 1, ""},
	} {
		// Not parallel: the login after the loop checks that none of them changed anything.
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runAttuneWith(t, c.stdin, nil, append([]string{"identity", "reset-password"}, c.args...)...)
			require.Equal(t, c.code, code, stderr)
			require.Empty(t, stdout)
			line := requireOneErrorLine(t, stderr)
			if c.want != "" {
				require.Equal(t, c.want, line)
			}
		})
	}
	stderr, code = login(m[1])
	require.Equal(t, 0, code, "a refused reset changed nothing: %s", stderr)

	// On a terminal the password is asked twice, and two that differ change nothing.
	stdout, stderr, code = runOnTerminal(t, "typed-once\ntyped-twice\n", "identity", "reset-password", "admin", url)
	require.Equal(t, 2, code, stderr)
	require.Empty(t, stdout)
	require.Equal(t, "New password for admin: \nAgain: \nattune: the two passwords typed differ; nothing was changed\n", stderr)
	stdout, stderr, code = runOnTerminal(t, "typed-twice\ntyped-twice\n", "identity", "reset-password", "admin", url)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "reset the password of admin")
	stderr, code = login("typed-twice")
	require.Equal(t, 0, code, stderr)
}

// runOnTerminal runs attune with a terminal for stdin, on which input is typed.
func runOnTerminal(t *testing.T, input string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	master, tty := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, attuneBin, args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &out, &errb
	require.NoError(t, cmd.Start())
	require.NoError(t, tty.Close())
	// The terminal keeps the lines until the command reads them; what it echoes is drained.
	_, err := io.WriteString(master, input)
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, master) }()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &exitErr)
		return out.String(), errb.String(), exitErr.ExitCode()
	}
	return out.String(), errb.String(), 0
}

// openPTY opens a pseudo-terminal pair (Linux): the master side to type on, the terminal for
// the command.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = master.Close() })
	var unlock, n int32
	for _, req := range []struct {
		op  uintptr
		arg *int32
	}{{syscall.TIOCSPTLCK, &unlock}, {syscall.TIOCGPTN, &n}} {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), req.op, uintptr(unsafe.Pointer(req.arg))); errno != 0 {
			t.Fatalf("set up pseudo-terminal: %v", errno)
		}
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	return master, tty
}
