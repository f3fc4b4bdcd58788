package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

var webhookSecretColumns = []column{{"URL", "url", 0}, {"CREATED", "created", 0}, {"UPDATED", "updated", 0}}

func newWebhookSecretCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("webhook-secret", "Make webhooks take signed bodies only (admins only)", &api)
	const path = "/api/v1/webhook-secrets"
	set := &cobra.Command{
		Use:   "set URL",
		Short: "Set the secret that senders to webhook URL sign their bodies with",
		Long: `Sets the secret of webhook URL (the last part of /api/v1/webhooks/URL, a rule's
trigger_params.url), replacing any before: from then on a body posted there is taken only
with the header X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body under the secret>,
as GitHub sends it.

The secret, 16 characters at least, is read from the terminal without echo, or from the first
line of stdin when stdin is not a terminal. It is never an argument, which ps and the shell's
history would show, and it is never printed, here or by the API.`,
		Example: `  attune webhook-secret set github
  openssl rand -hex 32 | tee github.secret | attune webhook-secret set github`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := api.client()
			if err != nil {
				return err
			}
			secret, err := readWebhookSecret(streams, args[0])
			if err != nil {
				return err
			}
			data, err := client.put(cmd.Context(), path+"/"+url.PathEscape(args[0]), map[string]string{"secret": secret})
			if err != nil {
				return err
			}
			return printObject(streams.Out, api.output, data)
		},
	}
	cmd.AddCommand(set,
		newListCommand(streams, &api, listCommand{noun: "the webhook urls that take signed bodies only", path: path,
			columns: webhookSecretColumns, all: true}),
		newDeleteCommand(streams, &api, deleteCommand{noun: "webhook secret", key: "URL", path: path,
			short: "Delete webhook URL's secret: it takes unsigned bodies again"}))
	return cmd
}

// readWebhookSecret reads the secret of webhook url from the terminal without echo, else from
// stdin's first line. Errors never quote what was read.
func readWebhookSecret(streams Streams, url string) (string, error) {
	if f, ok := streams.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return readSecret(streams, "Secret for webhook "+url+": ", false)
	}
	if streams.In == nil {
		return "", errors.New("no input to read the secret from")
	}
	line, err := bufio.NewReader(streams.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the secret from stdin: %w", err)
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return "", Usagef("no secret on stdin's first line: pipe it in, or run this on a terminal to be asked for it")
	}
	return secret, nil
}
