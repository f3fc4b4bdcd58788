package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// tarEntry is one entry of a test archive; a link when link is set.
type tarEntry struct {
	name, body, link string
	typ              byte
}

func tarGz(t *testing.T, entries ...tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Linkname: e.link}
		if e.typ != 0 {
			h.Typeflag, h.Size = e.typ, 0
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.String()
}

// An uploaded .tar.gz is registered as a version, once however often it is uploaded; an
// archive that would write outside its directory, or is no archive, is refused naming why.
func TestPackUpload(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	good := []tarEntry{
		{name: "up/pack.yaml", body: "ref: up\n"},
		{name: "up/actions/run.yaml", body: "ref: up.run\nrunner_type: shell\nentry_point: run.sh\n"},
		{name: "up/actions/run.sh", body: "#!/bin/sh\necho up\n"},
	}
	first := s.data(http.StatusOK, http.MethodPost, "/packs", tarGz(t, good...))
	require.Equal(t, "added", first["changes"].(map[string]any)["pack"])
	require.Len(t, first["current_version"], 64)
	require.Equal(t, "", first["path"], "an uploaded pack has no directory on the server")
	again := s.data(http.StatusOK, http.MethodPost, "/packs", tarGz(t, good[1], good[2], good[0]))
	require.Equal(t, first["current_version"], again["current_version"], "the hash is of the content, not of the archive's order")
	require.Equal(t, "unchanged", again["changes"].(map[string]any)["pack"])
	got := s.data(http.StatusOK, http.MethodGet, "/packs/up", "")
	versions := got["versions"].([]any)
	require.Len(t, versions, 1)
	require.Equal(t, true, versions[0].(map[string]any)["current"])

	withRun := func(e tarEntry) string { return tarGz(t, good[0], e) }
	s.refuseAll([]refused{
		{"leaves the directory", http.MethodPost, "/packs", withRun(tarEntry{name: "../evil.sh", body: "x"}), 400,
			`upload pack: archive entry "../evil.sh": path leaves the pack directory (..)`},
		{"leaves it deeper", http.MethodPost, "/packs", withRun(tarEntry{name: "actions/../../evil.sh", body: "x"}), 400,
			`archive entry "actions/../../evil.sh": path leaves the pack directory (..)`},
		{"absolute", http.MethodPost, "/packs", withRun(tarEntry{name: "/etc/evil", body: "x"}), 400,
			`archive entry "/etc/evil": absolute path`},
		{"symlink", http.MethodPost, "/packs", withRun(tarEntry{name: "actions/x.sh", link: "/etc/passwd", typ: tar.TypeSymlink}), 400,
			`archive entry "actions/x.sh": not a regular file or directory`},
		{"device", http.MethodPost, "/packs", withRun(tarEntry{name: "dev", typ: tar.TypeChar}), 400,
			`archive entry "dev": not a regular file or directory`},
		{"not gzip", http.MethodPost, "/packs", "ref: up\n", 400, "archive: not a gzip'd tar"},
		{"no pack.yaml", http.MethodPost, "/packs", tarGz(t, tarEntry{name: "readme", body: "x"}), 400, "no pack.yaml"},
		{"broken pack", http.MethodPost, "/packs", tarGz(t, tarEntry{name: "pack.yaml", body: "ref: up\nbogus: 1\n"}), 400, "bogus"},
	})
	require.Len(t, s.data(http.StatusOK, http.MethodGet, "/packs/up", "")["versions"], 1, "nothing of a refused upload is written")
}
