// Package app is Attune's composition root: the attune command tree, configuration from flags,
// ATTUNE_* environment variables and defaults (in that order), and the wiring of roles onto
// one pool, one broker connection and one HTTP server. It and its packages (cli, the API's
// client commands; bench; database) are the only code that picks concrete adapters or reads
// the environment.
package app
