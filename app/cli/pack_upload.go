package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

func newPackUploadCommand(streams Streams, api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "upload DIR|FILE",
		Short: "Upload a pack, a directory or a .tar.gz, as a new version",
		Long: `Uploads the pack in directory DIR (archived here) or in the .tar.gz FILE to the API, which
checks it as "pack register" does and stores its files in PostgreSQL as one version named by
a hash of its content. Workers fetch that version into their own cache: no host needs the
pack's files afterwards. New executions run the new version; running ones finish on theirs.
Uploading the same files again changes nothing.

An archive is refused, naming the entry, for absolute paths, paths with "..", links and
devices, and over 64 MiB compressed, 256 MiB unpacked or 10000 files (docs/pack-versions.md).`,
		Example: `  attune pack upload ./packs/demo
  attune pack upload demo-1.2.tar.gz`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return uploadPack(cmd.Context(), streams, api, args[0], args[0])
		},
	}
}

func newPackInstallCommand(streams Streams, api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "install GIT_URL[@REF]",
		Short: "Install a pack from a git repository, as a new version",
		Long: `Clones the git repository GIT_URL (at branch or tag REF, when given after the last "@") with
the git client on this machine, then uploads its files as "pack upload" does; the clone's
.git directory is left out. The pack.yaml must be at the repository's top.`,
		Example: `  attune pack install https://github.com/example/attune-demo.git
  attune pack install https://github.com/example/attune-demo.git@v1.2
  attune pack install file:///srv/git/demo`,
		Args: UsageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, ref := splitGitRef(args[0])
			dir, err := os.MkdirTemp("", "attune-install-")
			if err != nil {
				return fmt.Errorf("install pack %s: %w", args[0], err)
			}
			defer os.RemoveAll(dir)
			gitArgs := []string{"clone", "--quiet", "--depth", "1"}
			if ref != "" {
				gitArgs = append(gitArgs, "--branch", ref)
			}
			git := exec.CommandContext(cmd.Context(), "git", append(gitArgs, "--", repo, dir)...)
			if out, err := git.CombinedOutput(); err != nil {
				return fmt.Errorf("install pack %s: git clone: %v: %s", args[0], err, strings.TrimSpace(string(out)))
			}
			return uploadPack(cmd.Context(), streams, api, dir, args[0])
		},
	}
}

// splitGitRef splits "URL@REF" at its last "@", unless what follows holds a ":" (as the
// user in git@host:path does).
func splitGitRef(arg string) (repo, ref string) {
	i := strings.LastIndex(arg, "@")
	if i < 0 || strings.Contains(arg[i+1:], ":") || i+1 == len(arg) {
		return arg, ""
	}
	return arg[:i], arg[i+1:]
}

// uploadPack sends the pack at path (a directory, archived here, or a .tar.gz) to the API;
// name is how messages call it.
func uploadPack(ctx context.Context, streams Streams, api *apiFlags, path, name string) error {
	client, err := api.client()
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("upload pack %s: %w", name, err)
	}
	var archive []byte
	if info.IsDir() {
		c, err := pack.Archive(path, pack.DefaultLimits)
		if err != nil {
			return fmt.Errorf("upload pack %s: %w", name, err)
		}
		archive = c.Archive
	} else if archive, err = os.ReadFile(path); err != nil {
		return fmt.Errorf("upload pack %s: %w", name, err)
	}
	env, err := client.call(ctx, http.MethodPost, "/api/v1/packs", nil, rawBody{contentType: "application/gzip", data: archive})
	if err != nil {
		return err
	}
	registered, err := printRegistered(streams, api.output, env.Data, "upload", name)
	if err != nil || api.output != outputTable {
		return err
	}
	_, err = fmt.Fprintf(streams.Out, "version %s\n", registered.CurrentVersion)
	return err
}

// printPackShow prints a pack, then its versions as a table, newest first; JSON and YAML
// print the API's answer as it is.
func printPackShow(w io.Writer, format outputFormat, data json.RawMessage) error {
	if format != outputTable {
		return printObject(w, format, data)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("decode pack: %w", err)
	}
	var versions []store.PackVersion
	if raw, ok := fields["versions"]; ok {
		if err := json.Unmarshal(raw, &versions); err != nil {
			return fmt.Errorf("decode versions of pack: %w", err)
		}
		delete(fields, "versions")
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("encode pack: %w", err)
	}
	if err := printObject(w, format, rest); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nVERSION\tCREATED\tSIZE\tFILES\tCURRENT")
	for _, v := range versions {
		current := ""
		if v.Current {
			current = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", v.Hash, v.Created.UTC().Format(time.RFC3339), v.Size, v.Files, current)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
